package cda

import "flag"

// Update is the -update flag of the package's tests: it rewrites their
// golden files (testdata/golden, testdata/xdm/golden) and
// testdata/sample.pdf. It is declared once, here, for the tests of package
// cda and those of package cda_test (helpers_test.go), which share one test
// binary and so one set of flags.
var Update = flag.Bool("update", false, "rewrite the golden files of testdata/golden and testdata/xdm/golden, and testdata/sample.pdf")
