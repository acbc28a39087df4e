// Wrapper module for func's function loader (knative.dev/func/pkg/functions). The proxy
// refuses knative.dev/func itself: the build script adds
// `replace knative.dev/func => <unpacked ../shared/peers/knative-func-*.tar.gz>` and that
// module's own replace lines, then runs `go mod tidy -e` and `go build`.
module falco-responder/tests/peers/knative-func-loader

go 1.26

require knative.dev/func v0.0.0
