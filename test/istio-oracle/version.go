package main

// istioVersion is the istio.io/istio module version this program is built against; the build
// script passes the same string with -ldflags -X, so a binary built from another go.mod says so.
var istioVersion = "unknown"
