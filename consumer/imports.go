package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/healthlake"
)

// importJobs reads an import job's times with HealthLake's DescribeFHIRImportJob (IAM
// healthlake:DescribeFHIRImportJob), for the range an "Import Job Completed" event asks to be
// searched.
type importJobs struct {
	api interface {
		DescribeFHIRImportJob(ctx context.Context, in *healthlake.DescribeFHIRImportJobInput, optFns ...func(*healthlake.Options)) (*healthlake.DescribeFHIRImportJobOutput, error)
	}
}

func (j importJobs) DescribeImport(ctx context.Context, datastoreID, jobID string) (submit, end time.Time, err error) {
	out, err := j.api.DescribeFHIRImportJob(ctx, &healthlake.DescribeFHIRImportJobInput{
		DatastoreId: aws.String(datastoreID), JobId: aws.String(jobID),
	})
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("DescribeFHIRImportJob: %w", err)
	}
	p := out.ImportJobProperties
	if p == nil {
		return time.Time{}, time.Time{}, nil
	}
	return aws.ToTime(p.SubmitTime), aws.ToTime(p.EndTime), nil
}
