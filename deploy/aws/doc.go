// Package aws holds the AWS deployment of healthlake-cdc: template.yaml (one CloudFormation
// stack), RUNBOOK.md, and the tests that check the template without an AWS account: it parses
// into goformation's typed resources with no unknown property, every reference resolves, the
// security properties hold, and the ingest rule's pattern forwards exactly what the consumer
// acts on (evaluated with ./eventpattern against the CloudTrail fixtures).
package aws
