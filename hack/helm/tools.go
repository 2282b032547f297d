//go:build tools

// Package tools pins Helm, which renders, lints, installs and upgrades charts/modelgate in the tests.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
