// Package e2e holds the end-to-end tests of the browser UI: a real
// "velox serve" driven through Debian's Chromium with playwright-core
// (an npm package installed from package-lock.json in this directory).
package e2e
