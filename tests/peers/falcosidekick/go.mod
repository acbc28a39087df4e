// Wrapper module that builds Falcosidekick at a pinned release.
//
// Falcosidekick's release tags have no "v" prefix, so they are not semantic versions: the
// build script resolves the tag with "go get github.com/falcosecurity/falcosidekick@TAG" in a
// copy of this folder (the proxy turns it into a pseudo-version) and builds from there.
// Falcosidekick's own go.mod carries this replace, which only applies in the main module.
module falco-responder/tests/peers/falcosidekick

go 1.26.0

replace github.com/imdario/mergo => dario.cat/mergo v0.3.16
