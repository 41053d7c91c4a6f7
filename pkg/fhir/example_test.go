package fhir_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// A client for HealthLake signs with the credentials of the program's aws.Config and reads a
// window page by page.
func ExampleClient_Search() {
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := fhir.New(fhir.Config{
		Endpoint: "https://healthlake.us-east-1.amazonaws.com/datastore/{datastoreId}/r4/",
		HTTPClient: &http.Client{
			Timeout:   30 * time.Second,
			Transport: fhir.SigV4Transport(nil, awsCfg.Credentials, awsCfg.Region, nil),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	from := time.Date(2026, 11, 20, 9, 14, 58, 0, time.UTC)
	err = client.Search(ctx, "0123456789abcdef0123456789abcdef", "Observation", from, from.Add(8*time.Second),
		func(p fhir.Page) error {
			for _, r := range p.Resources {
				fmt.Println(r.ID, r.VersionID) // dedup and emit here; never log r.Raw
			}
			return nil
		})
	if retry.IsPermanent(err) {
		log.Printf("window cannot succeed: %v", err)
	}
}
