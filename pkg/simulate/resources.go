package simulate

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// template builds the FHIR JSON of one version of a synthetic resource. rng is seeded from
// the resource alone (the same for all its versions), so what does not change between
// versions stays the same; vrng is seeded from the resource and the version, for what an
// update changes. version is 0 for the create and n for the n-th update. subject is the
// reference to use for a subject or patient element.
type template func(rng, vrng *rand.Rand, version int, subject map[string]any) map[string]any

var templates = map[string]template{
	"Patient":            patient,
	"Practitioner":       practitioner,
	"Organization":       organization,
	"Observation":        observation,
	"Encounter":          encounter,
	"Condition":          condition,
	"AllergyIntolerance": allergy,
}

// SupportedTypes lists the resource types simulate can write, sorted.
func SupportedTypes() []string { return slices.Sorted(maps.Keys(templates)) }

const simSystem = "urn:healthlake-cdc:simulate"

// Body returns the JSON of version (0: the create) of the synthetic resourceType resource
// drawn from seed, with id set when not empty (updates carry the id, creates do not).
// patientRef is "Patient/{id}" of a patient in the same datastore, or empty when there is
// none; resources that need a subject then get a display-only reference.
func Body(resourceType string, seed uint64, version int, id, patientRef string) ([]byte, error) {
	tmpl, ok := templates[resourceType]
	if !ok {
		return nil, fmt.Errorf("simulate: no template for resource type %q", resourceType)
	}
	subject := map[string]any{"display": "Synthetic patient (none written yet)"}
	if patientRef != "" {
		subject = map[string]any{"reference": patientRef}
	}
	r := tmpl(rand.New(rand.NewPCG(seed, 0x5111)), rand.New(rand.NewPCG(seed, 1<<32|uint64(version))), version, subject)
	r["resourceType"] = resourceType
	if id != "" {
		r["id"] = id
	}
	r["meta"] = map[string]any{"tag": []any{map[string]any{
		"system": simSystem, "code": "synthetic", "display": "Synthetic test data, no real person",
	}}}
	return json.Marshal(r)
}

// Fictional names only: no combination names a real person on purpose.
var (
	families = []string{"Testperson", "Example", "Synthetic", "Placeholder", "Sample", "Mockingbird", "Fictional", "Simulacrum"}
	givens   = []string{"Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet", "Kilo", "Lima"}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// A fixed epoch keeps dates deterministic; the simulated clinical history is 2025.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func dateTime(rng *rand.Rand) time.Time {
	return epoch.Add(time.Duration(rng.IntN(365*24*60)) * time.Minute)
}

func fhirDateTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// phone is in 555-0100..555-0199, the range reserved for fiction.
func phone(rng *rand.Rand) string { return fmt.Sprintf("+1-555-01%02d", rng.IntN(100)) }

func coding(system, code, display string) map[string]any {
	return map[string]any{"system": system, "code": code, "display": display}
}

func concept(system, code, display string) map[string]any {
	return map[string]any{"coding": []any{coding(system, code, display)}, "text": display}
}

func patient(rng, vrng *rand.Rand, version int, _ map[string]any) map[string]any {
	family, given := pick(rng, families), pick(rng, givens)
	birth := time.Date(1940+rng.IntN(65), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	p := map[string]any{
		"identifier": []any{map[string]any{"system": simSystem + ":patient", "value": fmt.Sprintf("SIM-%08d", rng.IntN(1e8))}},
		"active":     true,
		"name":       []any{map[string]any{"use": "official", "family": family, "given": []any{given}}},
		"gender":     pick(rng, []string{"female", "male", "other", "unknown"}),
		"birthDate":  birth.Format(time.DateOnly),
		"address": []any{map[string]any{
			"line": []any{fmt.Sprintf("%d Example Street", 1+rng.IntN(999))}, "city": "Testville", "postalCode": "00000", "country": "XX",
		}},
	}
	if version > 0 { // updates: a new phone number each time
		p["telecom"] = []any{map[string]any{"system": "phone", "value": phone(vrng), "use": "mobile"}}
	}
	return p
}

func practitioner(rng, vrng *rand.Rand, version int, _ map[string]any) map[string]any {
	p := map[string]any{
		"identifier": []any{map[string]any{"system": simSystem + ":practitioner", "value": fmt.Sprintf("SIM-PR-%06d", rng.IntN(1e6))}},
		"active":     true,
		"name":       []any{map[string]any{"family": pick(rng, families), "given": []any{pick(rng, givens)}, "prefix": []any{"Dr."}}},
	}
	if version > 0 {
		p["telecom"] = []any{map[string]any{"system": "phone", "value": phone(vrng), "use": "work"}}
	}
	return p
}

func organization(rng, vrng *rand.Rand, version int, _ map[string]any) map[string]any {
	o := map[string]any{
		"active": true,
		"name":   fmt.Sprintf("Synthetic %s Clinic %d", pick(rng, families), 1+rng.IntN(99)),
		"type":   []any{concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")},
	}
	if version > 0 {
		o["telecom"] = []any{map[string]any{"system": "phone", "value": phone(vrng), "use": "work"}}
	}
	return o
}

// vital is a vital sign: LOINC code, UCUM unit and a plausible range.
type vital struct {
	code, display, unit, ucum string
	low, high                 float64
	decimals                  int
}

var vitals = []vital{
	{"8867-4", "Heart rate", "beats/minute", "/min", 50, 120, 0},
	{"9279-1", "Respiratory rate", "breaths/minute", "/min", 10, 24, 0},
	{"8480-6", "Systolic blood pressure", "mmHg", "mm[Hg]", 95, 170, 0},
	{"8462-4", "Diastolic blood pressure", "mmHg", "mm[Hg]", 55, 100, 0},
	{"8310-5", "Body temperature", "Cel", "Cel", 36.0, 39.5, 1},
	{"29463-7", "Body weight", "kg", "kg", 45, 130, 1},
	{"59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%", 88, 100, 0},
}

func round(v float64, decimals int) float64 {
	p := 1.0
	for range decimals {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func observation(rng, vrng *rand.Rand, version int, subject map[string]any) map[string]any {
	v := pick(rng, vitals)
	value := v.low + rng.Float64()*(v.high-v.low)
	status := "final"
	if version > 0 { // a correction: a new value, status amended
		value = v.low + vrng.Float64()*(v.high-v.low)
		status = "amended"
	}
	return map[string]any{
		"status": status,
		"category": []any{map[string]any{"coding": []any{coding(
			"http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")}}},
		"code":              concept("http://loinc.org", v.code, v.display),
		"subject":           subject,
		"effectiveDateTime": fhirDateTime(dateTime(rng)),
		"valueQuantity": map[string]any{
			"value": round(value, v.decimals), "unit": v.unit, "system": "http://unitsofmeasure.org", "code": v.ucum,
		},
	}
}

var encounterClasses = []map[string]any{
	coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
	coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "EMER", "emergency"),
	coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP", "inpatient encounter"),
}

func encounter(rng, vrng *rand.Rand, version int, subject map[string]any) map[string]any {
	start := dateTime(rng)
	e := map[string]any{
		"status":  "in-progress",
		"class":   pick(rng, encounterClasses),
		"type":    []any{concept("http://snomed.info/sct", "185349003", "Encounter for check up")},
		"subject": subject,
		"period":  map[string]any{"start": fhirDateTime(start)},
	}
	if version > 0 { // the encounter ends; later updates move the end
		end := start.Add(time.Duration(15+vrng.IntN(240)) * time.Minute)
		e["status"] = "finished"
		e["period"] = map[string]any{"start": fhirDateTime(start), "end": fhirDateTime(end)}
	}
	return e
}

var conditions = [][2]string{
	{"38341003", "Hypertensive disorder"},
	{"44054006", "Diabetes mellitus type 2"},
	{"195967001", "Asthma"},
	{"55822004", "Hyperlipidemia"},
	{"40055000", "Chronic sinusitis"},
	{"35489007", "Depressive disorder"},
}

func condition(rng, vrng *rand.Rand, version int, subject map[string]any) map[string]any {
	c := pick(rng, conditions)
	onset := dateTime(rng)
	cond := map[string]any{
		"clinicalStatus":     concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
		"verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
		"category": []any{concept("http://terminology.hl7.org/CodeSystem/condition-category",
			"problem-list-item", "Problem List Item")},
		"code":          concept("http://snomed.info/sct", c[0], c[1]),
		"subject":       subject,
		"onsetDateTime": fhirDateTime(onset),
		"recordedDate":  fhirDateTime(onset),
	}
	if version > 0 {
		status := pick(vrng, [][2]string{{"remission", "Remission"}, {"resolved", "Resolved"}, {"active", "Active"}})
		cond["clinicalStatus"] = concept("http://terminology.hl7.org/CodeSystem/condition-clinical", status[0], status[1])
	}
	return cond
}

var allergens = [][2]string{
	{"91936005", "Allergy to penicillin"},
	{"91935009", "Allergy to peanut"},
	{"300913006", "Shellfish allergy"},
	{"418689008", "Allergy to grass pollen"},
}

func allergy(rng, vrng *rand.Rand, version int, subject map[string]any) map[string]any {
	a := pick(rng, allergens)
	al := map[string]any{
		"clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
		"verificationStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
			"unconfirmed", "Unconfirmed"),
		"code":         concept("http://snomed.info/sct", a[0], a[1]),
		"patient":      subject,
		"recordedDate": fhirDateTime(dateTime(rng)),
		"criticality":  "low",
	}
	if version > 0 {
		al["verificationStatus"] = concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed")
		al["criticality"] = pick(vrng, []string{"low", "high", "unable-to-assess"})
	}
	return al
}

// Patch returns a JSON Patch (RFC 6902) that turns any earlier version of a synthetic
// resource into body (a version Body made): an "add" of each top-level element but
// resourceType, id and meta ("add" replaces a member that exists). It is enough because no
// template drops an element in a later version.
func Patch(body []byte) ([]byte, error) {
	var r map[string]json.RawMessage
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("simulate: patch: %w", err)
	}
	type operation struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	var ops []operation
	for _, k := range slices.Sorted(maps.Keys(r)) {
		if k == "resourceType" || k == "id" || k == "meta" {
			continue
		}
		// Element names are letters only, so the JSON Pointer needs no escaping.
		ops = append(ops, operation{Op: "add", Path: "/" + k, Value: r[k]})
	}
	return json.Marshal(ops)
}
