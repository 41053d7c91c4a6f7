package cloudtrail

import (
	"slices"
	"testing"
)

func TestResourceTypes(t *testing.T) {
	types := ResourceTypes()
	// R4 (4.0.1) ResourceType has 148 codes; two of them (Resource, DomainResource) are abstract.
	if len(types) != 146 {
		t.Errorf("%d resource types, want 146", len(types))
	}
	if !slices.IsSorted(types) || len(slices.Compact(slices.Clone(types))) != len(types) {
		t.Error("resource types are not sorted and unique")
	}
	for _, name := range types {
		if !IsResourceType(name) {
			t.Errorf("IsResourceType(%q) = false", name)
		}
	}
	types[0] = "Changed" // a copy: the package's list stays intact
	if !IsResourceType("Account") || IsResourceType("Changed") {
		t.Error("ResourceTypes returned the package's own slice")
	}

	r4 := []string{
		"Account", "Binary", "Bundle", "CatalogEntry", "DeviceUseStatement", "EffectEvidenceSynthesis",
		"Media", "MedicationStatement", "MedicinalProduct", "MedicinalProductUndesirableEffect",
		"MolecularSequence", "Parameters", "Patient", "RequestGroup", "RiskEvidenceSynthesis",
		"SubstanceSpecification", "VisionPrescription",
	}
	for _, name := range r4 {
		if !IsResourceType(name) {
			t.Errorf("IsResourceType(%q) = false, but it is an R4 resource type", name)
		}
	}
	notR4 := []string{
		"", "Resource", "DomainResource", "patient", "PATIENT", "Patient ", " Patient", "Patient/1",
		// R5 (or R4B) only.
		"ActorDefinition", "Permission", "SubscriptionStatus", "SubscriptionTopic", "Citation",
		"ClinicalUseDefinition", "Ingredient", "ManufacturedItemDefinition", "MedicinalProductDefinition",
		"PackagedProductDefinition", "RegulatedAuthorization", "Requirements", "Transport",
		"InventoryReport", "DeviceUsage", "NutritionProduct", "EvidenceReport", "FormularyItem",
		// Data types, not resources.
		"HumanName", "Reference", "Meta", "Extension",
	}
	for _, name := range notR4 {
		if IsResourceType(name) {
			t.Errorf("IsResourceType(%q) = true, but it is no R4 resource type", name)
		}
	}
}
