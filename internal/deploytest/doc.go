// Package deploytest checks the deployment artefacts — docker-compose.yml,
// the Dockerfiles and scripts under deploy/, and the Chef cookbooks under
// chef/ — against the code they configure: configurations they produce
// must load and validate with Velox's own loaders, files they name must
// exist, and services they connect must agree on addresses and secrets.
// It holds tests only.
package deploytest
