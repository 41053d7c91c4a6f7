package eventpattern_test

import (
	"strings"
	"testing"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/aws/eventpattern"
)

// The patterns and events below are the examples of the EventBridge User Guide, pages
// "Content filtering in Amazon EventBridge event patterns"
// (eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html), "Arrays in
// Amazon EventBridge event patterns" (eb-event-patterns-arrays.html) and "Comparison operators
// for use in event patterns" (eb-create-pattern-operators.html). Where a page gives only the
// pattern, the events are ours, one that matches and one that just misses.
func TestDocumentedExamples(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
		match, miss   []string
	}{
		{"prefix", `{"time": [{"prefix": "2017-10-02"}]}`,
			[]string{`{"time": "2017-10-02T18:43:48Z"}`},
			[]string{`{"time": "2017-10-03T00:00:00Z"}`, `{"time": 20171002}`, `{}`}},
		{"prefix ignore case", `{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}`,
			[]string{`{"detail": {"service": "EventBridge"}}`, `{"detail": {"service": "eventbus"}}`, `{"detail": {"service": "EVENTB"}}`},
			[]string{`{"detail": {"service": "Event"}}`}},
		{"suffix", `{"FileName": [{"suffix": ".png"}]}`,
			[]string{`{"FileName": "image.png"}`},
			[]string{`{"FileName": "image.PNG"}`, `{"FileName": "png.jpg"}`}},
		{"suffix ignore case", `{"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}`,
			[]string{`{"detail": {"FileName": "a.PNG"}}`},
			[]string{`{"detail": {"FileName": "a.gif"}}`}},
		{"anything-but string", `{"detail": {"state": [{"anything-but": "initializing"}]}}`,
			[]string{`{"detail": {"state": "running"}}`},
			[]string{`{"detail": {"state": "initializing"}}`, `{"detail": {}}`}},
		{"anything-but number", `{"detail": {"x-limit": [{"anything-but": 123}]}}`,
			[]string{`{"detail": {"x-limit": 124}}`},
			[]string{`{"detail": {"x-limit": 123}}`, `{"detail": {"x-limit": 1.23e2}}`}},
		{"anything-but string list", `{"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}`,
			[]string{`{"detail": {"state": "running"}}`},
			[]string{`{"detail": {"state": "stopped"}}`, `{"detail": {"state": "overloaded"}}`}},
		{"anything-but number list", `{"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}`,
			[]string{`{"detail": {"x-limit": 400}}`},
			[]string{`{"detail": {"x-limit": 200}}`}},
		{"anything-but prefix", `{"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}`,
			[]string{`{"detail": {"state": "running"}}`},
			[]string{`{"detail": {"state": "initializing"}}`}},
		{"anything-but suffix", `{"detail": {"FileName": [{"anything-but": {"suffix": ".png"}}]}}`,
			[]string{`{"detail": {"FileName": "a.txt"}}`},
			[]string{`{"detail": {"FileName": "a.png"}}`}},
		{"anything-but ignore case", `{"detail": {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}}`,
			[]string{`{"detail": {"state": "running"}}`},
			[]string{`{"detail": {"state": "INITIALIZING"}}`}},
		{"equals-ignore-case", `{"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]}`,
			[]string{`{"detail-type": "EC2 Instance State-change Notification"}`},
			[]string{`{"detail-type": "EC2 Instance"}`}},
		{"wildcard", `{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}`,
			[]string{`{"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}`},
			[]string{`{"EventBusArn": "arn:aws:events:us-west-2:123456789012:event-bus/default"}`}},
		{"numeric", `{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}}`,
			[]string{`{"detail": {"c-count": 5, "d-count": 9.5, "x-limit": 301.8}}`},
			[]string{`{"detail": {"c-count": 0, "d-count": 9, "x-limit": 301.8}}`, `{"detail": {"c-count": 1, "d-count": 10, "x-limit": 301.8}}`,
				`{"detail": {"c-count": "3", "d-count": 9, "x-limit": 301.8}}`}},
		// The exists example gives both events: the first matches, the second has no detail.state.
		{"exists", `{"detail": {"state": [{"exists": true}]}}`,
			[]string{`{"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "account": "123456789012", "time": "2015-11-11T21:29:54Z", "region": "us-east-1", "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"], "detail": {"instance-id": "i-abcd1111", "state": "pending"}}`},
			[]string{`{"detail-type": ["EC2 Instance State-change Notification"], "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341"], "detail": {"c-count": {"c1": 100}}}`}},
		{"exists false", `{"detail": {"state": [{"exists": false}]}}`,
			[]string{`{"detail": {"c-count": 1}}`, `{"source": "x"}`},
			[]string{`{"detail": {"state": "pending"}}`}},
		{"complex", `{"time": [{"prefix": "2017-10-02"}], "detail": {"state": [{"anything-but": "initializing"}], "c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"anything-but": [100, 200, 300]}]}}`,
			[]string{`{"time": "2017-10-02T00:00:00Z", "detail": {"state": "terminating", "c-count": 5, "d-count": 5, "x-limit": 400}}`},
			[]string{`{"time": "2017-10-02T00:00:00Z", "detail": {"state": "terminating", "c-count": 5, "d-count": 5, "x-limit": 200}}`}},
		{"$or", `{"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}, {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}}`,
			[]string{`{"detail": {"c-count": 3}}`, `{"detail": {"d-count": 1}}`, `{"detail": {"x-limit": 301.8}}`},
			[]string{`{"detail": {"c-count": 6, "d-count": 10, "x-limit": 1}}`}},
		{"$or top level", `{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]}`,
			[]string{`{"source": "aws.cloudwatch", "metricName": "ReadLatency"}`, `{"source": "aws.cloudwatch", "namespace": "AWS/ES"}`},
			[]string{`{"source": "aws.cloudwatch", "metricName": "WriteLatency"}`, `{"source": "aws.ec2", "namespace": "AWS/EC2"}`}},
		// Arrays: the pattern's first ARN is the event's second.
		{"arrays", `{"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f", "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}`,
			[]string{`{"resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate", "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}`},
			[]string{`{"resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate"]}`, `{"resources": []}`}},
		{"null and empty string", `{"detail": {"responseElements": [null], "eventName": [""]}}`,
			[]string{`{"detail": {"responseElements": null, "eventName": ""}}`},
			[]string{`{"detail": {"eventName": ""}}`, `{"detail": {"responseElements": "null", "eventName": ""}}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := eventpattern.Compile([]byte(tc.pattern))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			for _, ev := range tc.match {
				if ok, err := p.Matches([]byte(ev)); err != nil || !ok {
					t.Errorf("want a match (err %v) for %s", err, ev)
				}
			}
			for _, ev := range tc.miss {
				if ok, err := p.Matches([]byte(ev)); err != nil || ok {
					t.Errorf("want no match (err %v) for %s", err, ev)
				}
			}
		})
	}
}

// Patterns EventBridge refuses, or that this matcher does not implement, fail to compile
// instead of matching something by accident.
func TestCompileRefuses(t *testing.T) {
	for _, p := range []string{
		`[]`, `{}`, `{"source": "aws.ec2"}`, `{"source": []}`,
		`{"detail": {"state": [{"anything-but": {"prefix": ["a", "b"]}}]}}`, // one prefix only
		`{"x": [{"anything-but": ["a", 1]}]}`,
		`{"x": [{"numeric": [">", "1"]}]}`, `{"x": [{"numeric": ["!=", 1]}]}`, `{"x": [{"numeric": ["=", 1, "<", 2]}]}`,
		`{"x": [{"numeric": ["<", 6e9]}]}`,
		`{"x": [{"cidr": "10.0.0.0/24"}]}`, `{"x": [{"regex": "a"}]}`, `{"x": [{"prefix": "a", "suffix": "b"}]}`,
		`{"$or": [{"a": ["1"]}]}`, `{"x": [{"exists": "yes"}]}`,
	} {
		if _, err := eventpattern.Compile([]byte(p)); err == nil {
			t.Errorf("Compile(%s) accepted it", p)
		} else if !strings.HasPrefix(err.Error(), "eventpattern:") {
			t.Errorf("error %q does not say where it comes from", err)
		}
	}
}
