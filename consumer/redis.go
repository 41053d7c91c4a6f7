package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// newRedis builds the dedup client from a URL: one host is a plain client, several
// comma-separated hosts (redis://h1:6379,h2:6379) a cluster client.
func newRedis(raw string) (redis.UniversalClient, error) {
	opts, err := parseRedisURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	hosts := hostsOf(raw)
	if len(hosts) <= 1 {
		return redis.NewClient(opts), nil
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: hosts, Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig,
	}), nil
}

// parseRedisURL reads the options of the URL's first host; it does not connect. A url.Error
// would quote the URL and its password: only its cause is kept.
func parseRedisURL(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(firstHost(raw))
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return opts, err
}

// hostsOf returns the host:port list of a URL like redis://u:p@h1:1,h2:2/0.
func hostsOf(raw string) []string {
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return strings.Split(rest, ",")
}

// firstHost rewrites a multi-host URL to its first host, which ParseURL understands.
func firstHost(raw string) string {
	hosts := hostsOf(raw)
	if len(hosts) <= 1 {
		return raw
	}
	return strings.Replace(raw, strings.Join(hosts, ","), hosts[0], 1)
}
