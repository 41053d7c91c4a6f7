package aws_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

// parseDockerfile reads instructions the way the Dockerfile reference describes them: comment
// lines start with #, a trailing backslash continues the line, the keyword is case-insensitive.
func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" || len(stages) == 0 {
			stages = append(stages, nil)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

func find(stage []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// makeBuildPackages reads the packages `make build` compiles.
func makeBuildPackages(t *testing.T) []string {
	t.Helper()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	// Flags (the version stamp) may come between "build" and "-o".
	m := regexp.MustCompile(`(?m)^build:.*\n\t\$\(GO\) build (?:\S+ )*-o bin/ (.+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no `build` target with `$(GO) build [flags] -o bin/ ...` in the Makefile")
	}
	return strings.Fields(string(m[1]))
}

func TestDockerfileBuildsWhatMakeBuildBuilds(t *testing.T) {
	stages := parseDockerfile(t, "../Dockerfile")
	var build, final []instruction
	for _, s := range stages {
		if s[0].cmd == "FROM" && strings.HasSuffix(strings.ToLower(s[0].args), " as build") {
			build = s
		}
	}
	final = stages[len(stages)-1]
	if build == nil || final[0].cmd != "FROM" {
		t.Fatalf("want a build stage and a final stage, got %d stages", len(stages))
	}
	var goBuild string
	for _, run := range find(build, "RUN") {
		if strings.Contains(run.args, "go build") {
			goBuild = run.args
		}
	}
	if goBuild == "" {
		t.Fatal("the build stage runs no go build")
	}
	fields := strings.Fields(goBuild)
	for _, pkg := range makeBuildPackages(t) {
		if !contains(fields, pkg) {
			t.Errorf("make build compiles %s, the image does not: %s", pkg, goBuild)
		}
	}
	for _, f := range fields {
		if strings.HasPrefix(f, "./") && !contains(makeBuildPackages(t), f) {
			t.Errorf("the image compiles %s, make build does not", f)
		}
	}
	if !strings.HasPrefix(goBuild, "CGO_ENABLED=0 ") {
		t.Errorf("not a static build (CGO_ENABLED=0 first): %s", goBuild)
	}
	if !strings.Contains(goBuild, "-X main.version=${VERSION}") || len(find(build, "ARG")) == 0 {
		t.Errorf("version not stamped: %s", goBuild)
	}

	base := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("final base %s is neither distroless static nor scratch", base)
	}
	users := find(final, "USER")
	if len(users) != 1 {
		t.Fatalf("final stage has %d USER instructions", len(users))
	}
	if u, _, _ := strings.Cut(users[0].args, ":"); u == "root" || u == "0" || u == "" {
		t.Errorf("final stage runs as %q", users[0].args)
	}
	copies := find(final, "COPY")
	if len(copies) != 1 || !strings.HasPrefix(copies[0].args, "--from=build ") ||
		!strings.Contains(copies[0].args, "/out/consumer") || !strings.Contains(copies[0].args, "/out/producer") {
		t.Errorf("final stage copies %+v", copies)
	}
	if e := find(final, "ENTRYPOINT"); len(e) != 1 || e[0].args != `["/usr/local/bin/consumer"]` {
		t.Errorf("entrypoint %+v", e)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
