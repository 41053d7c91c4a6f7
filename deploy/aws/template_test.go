package aws_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
)

const templatePath = "template.yaml"

// Parameter sets that, together, take both branches of every condition.
var configs = map[string]map[string]string{
	"defaults": {
		"Image":                   "123456789012.dkr.ecr.us-west-2.amazonaws.com/healthlake-cdc:1.0.0",
		"ServiceSubnetIds":        "subnet-0a,subnet-0b",
		"ServiceSecurityGroupIds": "sg-0service",
		"RedisSubnetIds":          "subnet-1a,subnet-1b",
		"RedisSecurityGroupIds":   "sg-0redis",
	},
	"alternatives": {
		"Image":                     "123456789012.dkr.ecr.us-west-2.amazonaws.com/healthlake-cdc:1.0.0",
		"ServiceSubnetIds":          "subnet-0a,subnet-0b",
		"ServiceSecurityGroupIds":   "sg-0service",
		"DatastoreIds":              "095d2262da454bb7347488c930e009eb,0123456789abcdef0123456789abcdef",
		"CreateTrail":               "false",
		"StreamMode":                "PROVISIONED",
		"ShardCount":                "6",
		"RedisMode":                 "existing",
		"ExistingRedisUrlSecretArn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:cdc-redis-url-AbCdEf",
		"EnableCollector":           "false",
		"AlarmTopicArn":             "arn:aws:sns:us-west-2:123456789012:oncall",
	},
	"trail-reads": {
		"Image":                   "123456789012.dkr.ecr.us-west-2.amazonaws.com/healthlake-cdc:1.0.0",
		"ServiceSubnetIds":        "subnet-0a",
		"ServiceSecurityGroupIds": "sg-0service",
		"RedisSubnetIds":          "subnet-1a,subnet-1b",
		"RedisSecurityGroupIds":   "sg-0redis",
		"TrailLogReadEvents":      "true",
	},
}

func load(t *testing.T) *template {
	t.Helper()
	tmpl, _, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// typed evaluates the template for one parameter set and decodes it with goformation.
// goformation's generated types decode properties with DisallowUnknownFields, so a misspelt
// or invented property fails here (TestUnknownPropertyFails shows it does).
func typed(t *testing.T, config string) (*cloudformation.Template, map[string]any) {
	t.Helper()
	e, err := load(t).evaluator(configs[config])
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.resolved()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := goformation.ParseJSONWithOptions(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("%s: goformation: %v", config, err)
	}
	return tmpl, asMap(res["Resources"])
}

func TestTemplateParsesIntoKnownTypedResources(t *testing.T) {
	all := cloudformation.AllResources()
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			tmpl, raw := typed(t, name)
			if len(tmpl.Resources) != len(raw) || len(raw) < 20 {
				t.Fatalf("goformation decoded %d of %d resources", len(tmpl.Resources), len(raw))
			}
			for id, r := range raw {
				typ, _ := asMap(r)["Type"].(string)
				if _, ok := all[typ]; !ok {
					t.Errorf("%s: resource type %q is unknown to goformation", id, typ)
				}
			}
		})
	}
}

func TestUnknownPropertyFails(t *testing.T) {
	for _, doc := range []string{
		`{"Resources": {"S": {"Type": "AWS::Kinesis::Stream", "Properties": {"ShardCont": 2}}}}`,
		`{"Resources": {"S": {"Type": "AWS::Kinesis::Stream", "Properties": {"StreamEncryption": {"EncryptionType": "KMS", "KeyId": "k", "Extra": 1}}}}}`,
	} {
		if _, err := goformation.ParseJSONWithOptions([]byte(doc), &intrinsics.ProcessorOptions{NoProcess: true}); err == nil {
			t.Errorf("goformation accepted an unknown property: %s", doc)
		}
	}
}

func TestEveryReferenceResolves(t *testing.T) {
	if bad := load(t).references(); len(bad) > 0 {
		t.Fatalf("unresolved references:\n%s", strings.Join(bad, "\n"))
	}
	// The check itself finds a dangling reference.
	tm := load(t)
	tm.resources["Broken"] = map[string]any{"Type": "AWS::SQS::Queue", "Properties": map[string]any{
		"QueueName": map[string]any{"Fn::Sub": "${Nowhere}-${Stream.Arn}-${Gone.Arn}"}}}
	if bad := tm.references(); len(bad) != 2 {
		t.Fatalf("want 2 problems (${Nowhere}, ${Gone.Arn}), got %v", bad)
	}
}

func TestNoYAMLAliases(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(p, []byte("a: &x [1]\nb: *x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadTemplate(p); err == nil {
		t.Fatal("an alias was accepted; CloudFormation refuses them")
	}
}

func TestEncryptionAndDurability(t *testing.T) {
	tmpl, _ := typed(t, "defaults")
	stream, err := tmpl.GetKinesisStreamWithName("Stream")
	if err != nil {
		t.Fatal(err)
	}
	if e := stream.StreamEncryption; e == nil || e.EncryptionType != "KMS" || e.KeyId != "{GetAtt:StreamKey.Arn}" {
		t.Errorf("stream encryption: %+v", stream.StreamEncryption)
	}
	if stream.StreamModeDetails == nil || stream.StreamModeDetails.StreamMode != "ON_DEMAND" || stream.ShardCount != nil {
		t.Errorf("default stream mode: %+v shards %v", stream.StreamModeDetails, stream.ShardCount)
	}
	if *stream.RetentionPeriodHours != 168 {
		t.Errorf("retention %d", *stream.RetentionPeriodHours)
	}

	bucket, err := tmpl.GetS3BucketWithName("TrailBucket")
	if err != nil {
		t.Fatal(err)
	}
	sse := bucket.BucketEncryption.ServerSideEncryptionConfiguration
	if len(sse) != 1 || sse[0].ServerSideEncryptionByDefault.SSEAlgorithm != "AES256" {
		t.Errorf("bucket encryption: %+v", sse)
	}
	pab := bucket.PublicAccessBlockConfiguration
	if !*pab.BlockPublicAcls || !*pab.BlockPublicPolicy || !*pab.IgnorePublicAcls || !*pab.RestrictPublicBuckets {
		t.Errorf("public access block: %+v", pab)
	}
	trail, err := tmpl.GetCloudTrailTrailWithName("Trail")
	if err != nil {
		t.Fatal(err)
	}
	if !*trail.EnableLogFileValidation || !trail.IsLogging || trail.S3BucketName != "{Ref:TrailBucket}" {
		t.Errorf("trail: validation %v logging %v bucket %v", *trail.EnableLogFileValidation, trail.IsLogging, trail.S3BucketName)
	}
	// Management events (HealthLake has no data-event type), write events only by default.
	sel := trail.AdvancedEventSelectors
	if len(sel) != 1 || len(sel[0].FieldSelectors) != 2 || sel[0].FieldSelectors[0].Field != "eventCategory" ||
		!reflect.DeepEqual(sel[0].FieldSelectors[0].Equals, []string{"Management"}) ||
		sel[0].FieldSelectors[1].Field != "readOnly" || !reflect.DeepEqual(sel[0].FieldSelectors[1].Equals, []string{"false"}) {
		t.Errorf("trail selectors: %+v", sel)
	}

	for _, q := range []string{"IngestDeadLetterQueue", "OpsQueue"} {
		queue, err := tmpl.GetSQSQueueWithName(q)
		if err != nil {
			t.Fatal(err)
		}
		if queue.SqsManagedSseEnabled == nil || !*queue.SqsManagedSseEnabled {
			t.Errorf("%s is not encrypted", q)
		}
	}

	redis, err := tmpl.GetElastiCacheReplicationGroupWithName("Redis")
	if err != nil {
		t.Fatal(err)
	}
	if !*redis.TransitEncryptionEnabled || !*redis.AtRestEncryptionEnabled || !*redis.MultiAZEnabled || !*redis.AutomaticFailoverEnabled {
		t.Errorf("redis: transit %v at-rest %v multi-AZ %v failover %v", *redis.TransitEncryptionEnabled, *redis.AtRestEncryptionEnabled,
			*redis.MultiAZEnabled, *redis.AutomaticFailoverEnabled)
	}
	if *redis.AuthToken != "{{resolve:secretsmanager:{Ref:RedisAuthSecret}:SecretString:token}}" {
		t.Errorf("redis auth token: %s", *redis.AuthToken)
	}

	table, err := tmpl.GetDynamoDBTableWithName("LeaseTable")
	if err != nil {
		t.Fatal(err)
	}
	// The library's own constant: the key schema is the one vmware-go-kcl-v2 reads and writes.
	if len(table.KeySchema) != 1 || table.KeySchema[0].AttributeName != checkpoint.LeaseKeyKey || table.KeySchema[0].KeyType != "HASH" ||
		len(table.AttributeDefinitions) != 1 || table.AttributeDefinitions[0].AttributeType != "S" {
		t.Errorf("lease table keys: %+v %+v", table.KeySchema, table.AttributeDefinitions)
	}
	if *table.TableName != "healthlake-cdc" || *table.BillingMode != "PAY_PER_REQUEST" || !*table.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled {
		t.Errorf("lease table: name %s billing %s", *table.TableName, *table.BillingMode)
	}
}

func TestIngestRuleTarget(t *testing.T) {
	tmpl, _ := typed(t, "defaults")
	rule, err := tmpl.GetEventsRuleWithName("IngestRule")
	if err != nil {
		t.Fatal(err)
	}
	if *rule.EventBusName != "default" || *rule.State != "ENABLED" || len(rule.Targets) != 1 {
		t.Fatalf("rule: bus %s state %s targets %d", *rule.EventBusName, *rule.State, len(rule.Targets))
	}
	tg := rule.Targets[0]
	if tg.Arn != "{GetAtt:Stream.Arn}" || *tg.RoleArn != "{GetAtt:IngestRuleRole.Arn}" {
		t.Errorf("target %s role %s", tg.Arn, *tg.RoleArn)
	}
	if tg.RetryPolicy == nil || *tg.RetryPolicy.MaximumRetryAttempts != 185 || *tg.RetryPolicy.MaximumEventAgeInSeconds != 86400 {
		t.Errorf("retry policy: %+v", tg.RetryPolicy)
	}
	if tg.DeadLetterConfig == nil || *tg.DeadLetterConfig.Arn != "{GetAtt:IngestDeadLetterQueue.Arn}" {
		t.Errorf("dead-letter config: %+v", tg.DeadLetterConfig)
	}
	if tg.KinesisParameters == nil || tg.KinesisParameters.PartitionKeyPath != "$.id" {
		t.Errorf("partition key: %+v", tg.KinesisParameters)
	}
}

type statement struct {
	Sid      string
	Actions  []string
	Resource []string
}

func statements(t *testing.T, tmpl *cloudformation.Template, role string) []statement {
	t.Helper()
	r, err := tmpl.GetIAMRoleWithName(role)
	if err != nil {
		t.Fatal(err)
	}
	var out []statement
	for _, p := range r.Policies {
		doc := asMap(p.PolicyDocument)
		for _, s := range asSlice(doc["Statement"]) {
			sm := asMap(s)
			if sm["Effect"] != "Allow" {
				t.Errorf("%s: statement %v is not an Allow", role, sm["Sid"])
			}
			out = append(out, statement{Sid: fmtS(sm["Sid"]), Actions: strs(sm["Action"]), Resource: strs(sm["Resource"])})
		}
	}
	return out
}

func fmtS(v any) string { s, _ := v.(string); return s }

func strs(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	for _, x := range asSlice(v) {
		out = append(out, fmtS(x))
	}
	return out
}

const dsARN = "arn:{AWS::Partition}:healthlake:{AWS::Region}:{AWS::AccountId}:datastore/fhir/"

var healthLakeReads = []string{"healthlake:SearchWithGet", "healthlake:SearchWithPost", "healthlake:ReadResource",
	"healthlake:VersionReadResource", "healthlake:GetHistoryByResourceId", "healthlake:GetCapabilities", "healthlake:DescribeFHIRImportJob"}

func TestTaskRoleIsExactlyLeastPrivilege(t *testing.T) {
	common := []statement{
		{"StreamRead", []string{"kinesis:DescribeStream", "kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords"}, []string{"{GetAtt:Stream.Arn}"}},
		{"StreamDecrypt", []string{"kms:Decrypt"}, []string{"{GetAtt:StreamKey.Arn}"}},
		{"Leases", []string{"dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"}, []string{"{GetAtt:LeaseTable.Arn}"}},
		{"Emit", []string{"events:PutEvents"}, []string{"{GetAtt:CdcBus.Arn}"}},
	}
	for config, want := range map[string][]statement{
		"defaults": append(append([]statement{{"HealthLakeRead", healthLakeReads, []string{dsARN + "*"}}}, common...),
			statement{"MetricsEmf", []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}, []string{"{GetAtt:MetricsLogGroup.Arn}"}}),
		"alternatives": append([]statement{{"HealthLakeRead", healthLakeReads,
			[]string{dsARN + "095d2262da454bb7347488c930e009eb", dsARN + "0123456789abcdef0123456789abcdef"}}}, common...),
	} {
		tmpl, _ := typed(t, config)
		if got := statements(t, tmpl, "TaskRole"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: task role statements\n got %+v\nwant %+v", config, got, want)
		}
		for _, s := range statements(t, tmpl, "TaskRole") {
			for _, a := range s.Actions {
				if strings.Contains(a, "*") {
					t.Errorf("%s: wildcard action %s", config, a)
				}
			}
		}
	}
}

func TestExecutionRoleAndRuleRole(t *testing.T) {
	tmpl, _ := typed(t, "alternatives")
	got := statements(t, tmpl, "ExecutionRole")
	want := []statement{
		{"RegistryToken", []string{"ecr:GetAuthorizationToken"}, []string{"*"}},
		{"PullImage", []string{"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"}, []string{"arn:{AWS::Partition}:ecr:{AWS::Region}:{AWS::AccountId}:repository/*"}},
		{"Logs", []string{"logs:CreateLogStream", "logs:PutLogEvents"}, []string{"{GetAtt:LogGroup.Arn}"}},
		{"RedisUrl", []string{"secretsmanager:GetSecretValue"}, []string{configs["alternatives"]["ExistingRedisUrlSecretArn"]}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("execution role\n got %+v\nwant %+v", got, want)
	}
	rule := statements(t, tmpl, "IngestRuleRole")
	if len(rule) != 2 || !reflect.DeepEqual(rule[0].Actions, []string{"kinesis:PutRecord", "kinesis:PutRecords"}) ||
		!reflect.DeepEqual(rule[1].Actions, []string{"kms:GenerateDataKey"}) {
		t.Errorf("rule role: %+v", rule)
	}
}

// cdcVariables reads the CDC_* variable names the consumer's flags fall back to.
func cdcVariables(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../../consumer/flags.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`cli\.EnvVars\("(CDC_[A-Z_]+)"\)`).FindAllStringSubmatch(string(src), -1) {
		out[m[1]] = true
	}
	if len(out) < 10 {
		t.Fatalf("found only %d CDC_ variables in consumer/flags.go", len(out))
	}
	return out
}

func TestTaskDefinitionWiring(t *testing.T) {
	known := cdcVariables(t)
	for config := range configs {
		tmpl, _ := typed(t, config)
		td, err := tmpl.GetECSTaskDefinitionWithName("TaskDefinition")
		if err != nil {
			t.Fatal(err)
		}
		c := td.ContainerDefinitions[0]
		if c.Name != "consumer" || c.StopTimeout == nil || *c.StopTimeout > 120 {
			t.Fatalf("%s: consumer container %s stopTimeout %v", config, c.Name, c.StopTimeout)
		}
		env := map[string]string{}
		for _, kv := range c.Environment {
			env[*kv.Name] = *kv.Value
			if strings.HasPrefix(*kv.Name, "CDC_") && !known[*kv.Name] {
				t.Errorf("%s: %s is not a consumer variable", config, *kv.Name)
			}
		}
		for _, need := range []string{"CDC_STREAM", "CDC_BUS", "CDC_APPLICATION", "CDC_SHUTDOWN_GRACE", "OTEL_METRICS_EXPORTER"} {
			if env[need] == "" {
				t.Errorf("%s: %s not set", config, need)
			}
		}
		if env["CDC_STREAM"] != "{Ref:Stream}" || env["CDC_BUS"] != "{Ref:CdcBus}" || env["CDC_APPLICATION"] != "healthlake-cdc" {
			t.Errorf("%s: stream %s bus %s application %s", config, env["CDC_STREAM"], env["CDC_BUS"], env["CDC_APPLICATION"])
		}
		// The stop timeout covers the grace (seconds) with room for the last checkpoint.
		grace := strings.TrimSuffix(env["CDC_SHUTDOWN_GRACE"], "s")
		if g := atoi(t, grace); g+10 > *c.StopTimeout {
			t.Errorf("%s: stopTimeout %d does not cover grace %ds", config, *c.StopTimeout, g)
		}
		if len(c.Secrets) != 1 || c.Secrets[0].Name != "CDC_REDIS_URL" || !known["CDC_REDIS_URL"] {
			t.Errorf("%s: secrets %+v", config, c.Secrets)
		}
		_, hasDs := env["CDC_DATASTORES"]
		if hasDs != (configs[config]["DatastoreIds"] != "") {
			t.Errorf("%s: CDC_DATASTORES set %v", config, hasDs)
		}
		sidecar := len(td.ContainerDefinitions) == 2
		if sidecar != (configs[config]["EnableCollector"] != "false") || (sidecar && env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "") {
			t.Errorf("%s: collector sidecar %v, OTLP endpoint %q", config, sidecar, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

func TestAutoscalingCappedAtShards(t *testing.T) {
	tmpl, _ := typed(t, "alternatives")
	st, err := tmpl.GetApplicationAutoScalingScalableTargetWithName("ScalableTarget")
	if err != nil {
		t.Fatal(err)
	}
	if st.MaxCapacity != 6 || st.MinCapacity != 1 {
		t.Errorf("provisioned with 6 shards: capacity %d..%d", st.MinCapacity, st.MaxCapacity)
	}
	tmpl, _ = typed(t, "defaults")
	if st, _ = tmpl.GetApplicationAutoScalingScalableTargetWithName("ScalableTarget"); st.MaxCapacity != 4 {
		t.Errorf("on-demand: max %d", st.MaxCapacity)
	}
}

func TestAlarms(t *testing.T) {
	want := map[string][]string{
		"defaults": {"DeadLetterAlarm", "EventsFailedAlarm", "IteratorAgeAlarm", "OpsQueueAlarm", "RangesParkedAlarm", "RuleFailedInvocationsAlarm", "WatermarkAgeAlarm"},
		// Without the collector there are no consumer metrics to alarm on.
		"alternatives": {"DeadLetterAlarm", "IteratorAgeAlarm", "OpsQueueAlarm", "RuleFailedInvocationsAlarm"},
	}
	for config, names := range want {
		tmpl, _ := typed(t, config)
		var got []string
		for name, a := range tmpl.GetAllCloudWatchAlarmResources() {
			got = append(got, name)
			if (configs[config]["AlarmTopicArn"] != "") != (len(a.AlarmActions) == 1) {
				t.Errorf("%s: %s actions %v", config, name, a.AlarmActions)
			}
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, names) {
			t.Errorf("%s: alarms %v, want %v", config, got, names)
		}
	}
	tmpl, _ := typed(t, "defaults")
	if w, _ := tmpl.GetCloudWatchAlarmWithName("WatermarkAgeAlarm"); *w.MetricName != "hlcdc.watermark.age" || *w.Namespace != "HealthLakeCDC" {
		t.Errorf("watermark alarm on %s/%s", *w.Namespace, *w.MetricName)
	}
	d, err := tmpl.GetCloudWatchDashboardWithName("Dashboard")
	if err != nil {
		t.Fatal(err)
	}
	var body any
	if err := json.Unmarshal([]byte(d.DashboardBody), &body); err != nil {
		t.Errorf("dashboard body is not JSON: %v", err)
	}
}
