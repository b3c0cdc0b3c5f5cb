// Package sdkcheck drives the Graph emulator with Microsoft's official Go SDK
// (github.com/microsoftgraph/msgraph-sdk-go, default middleware, request compression on), so the
// emulator stays faithful to what real Graph clients send and expect. It is a module of its own:
// the SDK takes minutes to compile, and the desk's build and go.mod do not carry it.
package sdkcheck
