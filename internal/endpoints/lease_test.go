package endpoints_test

import (
	"testing"

	"github.com/fjord-net/fjord/internal/agent"
	"github.com/fjord-net/fjord/internal/endpoints"
)

func TestLeaseNamespaceIsTheAgents(t *testing.T) {
	if endpoints.LeaseNamespace != agent.LeaseNamespace {
		t.Fatalf("endpoints watches %q, the agent writes %q", endpoints.LeaseNamespace, agent.LeaseNamespace)
	}
}
