//go:build race

package testkit

// BuildFlags are the go build flags that match this test binary's own build, so a desk built for
// a test reuses the packages the test run compiled.
var BuildFlags = []string{"-race"}
