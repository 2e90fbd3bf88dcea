package endpoints

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/fjord-net/fjord/internal/store"
)

var errSessionLost = errors.New("election session expired")

// term is one etcd session: campaign, lead until ctx ends or the session is lost, then
// give the session back so the next candidate takes over without waiting for the TTL.
//
// Ordering: the leader's context is cancelled as soon as the session's keep-alive fails,
// and every write checks it first. A leader cut off from etcd may finish the write it
// is in while its lease expires and another node is elected; that write is the same
// desired state the new leader computes, so the two converge.
func (c *Controller) term(ctx context.Context) error {
	// The session outlives ctx just long enough for Close to revoke its lease.
	sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
	defer scancel()
	sess, err := concurrency.NewSession(c.st.Client(),
		concurrency.WithTTL(int(c.cfg.SessionTTL.Seconds())), concurrency.WithContext(sctx))
	if err != nil {
		return fmt.Errorf("election session: %w", err)
	}
	defer sess.Close()

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-lctx.Done():
		}
	}()
	el := concurrency.NewElection(sess, ElectionKey(c.st))
	if err := el.Campaign(lctx, c.cfg.Identity); err != nil {
		if ctx.Err() == nil && lctx.Err() != nil {
			return errSessionLost
		}
		return fmt.Errorf("campaign: %w", err)
	}
	c.log.Info("leading the endpoints controller", "identity", c.cfg.Identity)
	c.leader.Store(true)
	c.lead(lctx, store.Fence{Key: el.Key(), Rev: el.Rev()})
	c.leader.Store(false)
	if ctx.Err() != nil {
		c.log.Info("endpoints controller stopping; handing leadership over")
		return nil
	}
	return errSessionLost
}
