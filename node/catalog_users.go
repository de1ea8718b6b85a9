package node

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/catalog"
	"github.com/ragnode/ragnode/transport"
)

// OpenRAG's users on every node (--catalog): a bearer token found in
// OpenRAG's users table is that user (transport.Auth.External), with its
// memberships as its partitions; /users/info, the upload quota and the
// record of who uploaded what and who created which partition read and
// write the catalog from here (package catalog's users.go). The leader's
// sync (catalog.go) turns those records into files.created_by,
// users.file_count and owner memberships.
//
// A ragnode admin token (the bootstrap token or an admin ledger token)
// acts as OpenRAG's admin user, id 1, the account OpenRAG makes from its
// own AUTH_TOKEN: so the partitions it creates are owned by someone
// OpenRAG shows them to.

// openRAGAdminID is the user OpenRAG creates for its AUTH_TOKEN.
const openRAGAdminID = 1

// catalogUsers is a node's lazily opened reader of OpenRAG's users.
type catalogUsers struct {
	dsn          string
	defaultQuota int64
	mu           sync.Mutex
	u            *catalog.Users
}

// newCatalogUsers reads OpenRAG's DEFAULT_FILE_QUOTA (its
// config.rdb.default_file_quota; -1, no limit, when unset), the limit of
// a user whose own file_quota is NULL. The CLI loads the deployment's
// .env into the environment before the node starts.
func newCatalogUsers(dsn string) *catalogUsers {
	q := int64(-1)
	if v, err := strconv.ParseInt(strings.TrimSpace(os.Getenv("DEFAULT_FILE_QUOTA")), 10, 64); err == nil {
		q = v
	}
	return &catalogUsers{dsn: dsn, defaultQuota: q}
}

// get opens the catalog on first use; a failure is retried on the next.
func (cu *catalogUsers) get(ctx context.Context) (*catalog.Users, error) {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	if cu.u != nil {
		return cu.u, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u, err := catalog.OpenUsers(cctx, cu.dsn)
	if err != nil {
		return nil, err
	}
	cu.u = u
	return u, nil
}

func (cu *catalogUsers) close() {
	cu.mu.Lock()
	defer cu.mu.Unlock()
	if cu.u != nil {
		cu.u.Close()
		cu.u = nil
	}
}

// catalogExternal is the Auth.External hook, nil without --catalog.
func (n *Node) catalogExternal() func(context.Context, string) (transport.Caller, bool, error) {
	if n.cfg.Catalog == "" {
		return nil
	}
	n.catUsers = newCatalogUsers(n.cfg.Catalog)
	go func() {
		<-n.Done()
		n.catUsers.close()
	}()
	return n.catUsers.external
}

// external is the Caller an OpenRAG user's token makes: an admin is a
// ragnode admin; anyone else may index (where its memberships let it,
// auth_scope.go) and is limited to its memberships.
func (cu *catalogUsers) external(ctx context.Context, secret string) (transport.Caller, bool, error) {
	u, err := cu.get(ctx)
	if err != nil {
		return transport.Caller{}, false, err
	}
	us, ok, err := u.ByToken(ctx, secret)
	if err != nil || !ok {
		return transport.Caller{}, false, err
	}
	c := transport.Caller{TokenID: "openrag-user:" + strconv.FormatInt(us.ID, 10), Role: fsm.RoleAdmin, UserID: us.ID}
	if !us.IsAdmin {
		c.Role = fsm.RoleIndex
		c.Partitions = us.Memberships
		if c.Partitions == nil {
			c.Partitions = map[string]string{}
		}
	}
	return c, true, nil
}

// actingUser is the OpenRAG user a caller acts as: its own, or for a
// ragnode admin token OpenRAG's admin when that account exists; 0 for
// none.
func (n *Node) actingUser(ctx context.Context, c transport.Caller) (catalog.User, bool, error) {
	if n.catUsers == nil || c.Node {
		return catalog.User{}, false, nil
	}
	id := c.UserID
	if id == 0 && (c.Role == fsm.RoleAdmin || c.TokenID == "") {
		id = openRAGAdminID
	}
	if id == 0 {
		return catalog.User{}, false, nil
	}
	u, err := n.catUsers.get(ctx)
	if err != nil {
		return catalog.User{}, false, err
	}
	us, ok, err := u.ByID(ctx, id)
	if err != nil || !ok {
		return catalog.User{}, false, err
	}
	if c.UserID == 0 && !us.IsAdmin {
		return catalog.User{}, false, nil // user 1 is not OpenRAG's admin here
	}
	return us, true, nil
}

// UserInfo implements transport.CompatUsersBackend: OpenRAG's
// get_current_user_info for the caller's account.
func (n *Node) UserInfo(ctx context.Context, c transport.Caller) (map[string]any, error) {
	if n.catUsers == nil {
		return nil, errs.Errorf(errs.NotFound, "no OpenRAG catalog is configured")
	}
	u, err := n.catUsers.get(ctx)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err)
	}
	us, ok, err := u.ByID(ctx, c.UserID)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err)
	}
	if !ok {
		return nil, errs.Errorf(errs.NotFound, "User '%d' not found", c.UserID)
	}
	pending, err := u.Pending(ctx, us.ID)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err)
	}
	memberships := []map[string]any{}
	for p, role := range us.Memberships {
		memberships = append(memberships, map[string]any{"partition": p, "role": role,
			"added_at": us.AddedAt[p].Format("2006-01-02T15:04:05.999999")})
	}
	var quota any = catalog.EffectiveQuota(us, n.catUsers.defaultQuota)
	return map[string]any{
		"id": us.ID, "display_name": us.DisplayName, "external_user_id": us.ExternalUserID, "email": us.Email,
		"is_admin": us.IsAdmin, "memberships": memberships,
		"file_count": us.FileCount, "pending_files": pending, "total_files": us.FileCount + pending, "file_quota": quota,
	}, nil
}

// Actors implements transport.CompatUsersBackend: the cluster's nodes as
// OpenRAG's admin UI lists Ray actors.
func (n *Node) Actors(ctx context.Context) ([]transport.Actor, error) {
	ms, err := n.Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]transport.Actor, 0, len(ms))
	for _, m := range ms {
		state := "ALIVE"
		switch {
		case m.SerfStatus == "failed" || m.SerfStatus == "left" || m.SerfStatus == "leaving":
			state = "DEAD"
		case m.Healthy != nil && !*m.Healthy:
			state = "PENDING_CREATION" // known, not yet (or no longer) serving
		}
		out = append(out, transport.Actor{ActorID: m.ID, Namespace: "ragnode", Name: m.Name, ClassName: "Indexer", State: state})
	}
	return out, nil
}

// RestartActor implements transport.CompatUsersBackend: the node stops
// taking work, hands back what it holds queued, and takes work again.
func (n *Node) RestartActor(ctx context.Context, name string) error {
	if err := n.Drain(ctx, transport.DrainRequest{Node: name}); err != nil {
		return err
	}
	return n.Drain(ctx, transport.DrainRequest{Node: name, Cancel: true})
}

// BeginUpload implements transport.CompatUsersBackend: OpenRAG's quota
// check for a new file, and the record, once the task exists, of who
// uploaded it (and who created the partition it makes).
func (n *Node) BeginUpload(ctx context.Context, c transport.Caller, partition string, quota bool) (func(transport.TaskView), error) {
	us, ok, err := n.actingUser(ctx, c)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err)
	}
	if !ok {
		return nil, nil
	}
	u, err := n.catUsers.get(ctx)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err)
	}
	if quota {
		var q catalog.ErrQuota
		if err := u.CheckQuota(ctx, us, n.catUsers.defaultQuota); errors.As(err, &q) {
			return nil, errs.Errorf(errs.Forbidden, "%s", q.Error())
		} else if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err)
		}
	}
	var existed bool
	n.fsm.View(func(s *fsm.State) { existed = s.HasPartition(partition) })
	return func(tv transport.TaskView) {
		// The upload stands; a record lost here only leaves the file
		// unattributed (no created_by, not counted), which is logged.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if !existed {
			if err := u.RecordCreator(rctx, us.ID, partition); err != nil {
				n.log.Warn("catalog: record partition creator", "partition", partition, "error", err)
			}
		}
		if err := u.RecordUpload(rctx, us.ID, tv.ID, tv.Partition, tv.FileID, tv.FileName); err != nil {
			n.log.Warn("catalog: record uploader", "task", tv.ID, "error", err)
		}
	}, nil
}

// PartitionCreated implements transport.CompatUsersBackend.
func (n *Node) PartitionCreated(ctx context.Context, c transport.Caller, partition string) {
	us, ok, err := n.actingUser(ctx, c)
	if err != nil || !ok {
		return
	}
	u, err := n.catUsers.get(ctx)
	if err == nil {
		err = u.RecordCreator(ctx, us.ID, partition)
	}
	if err != nil {
		n.log.Warn("catalog: record partition creator", "partition", partition, "error", err)
	}
}

// PartitionExists lets the scope check tell a partition an OpenRAG user
// may create from one it may not touch (auth_external.go).
func (r scopeResolver) PartitionExists(_ context.Context, name string) (bool, error) {
	var ok bool
	r.view(func(s *fsm.State) { ok = s.HasPartition(name) })
	return ok, nil
}

// catalogOptions are the node's settings the catalog rows carry.
func (n *Node) catalogOptions() catalog.Options {
	ic := n.cfg.Indexer
	o := catalog.Options{}
	if n.emb != nil {
		o.Dimension = n.emb.Dim()
	}
	if ic.VDB == "milvus" {
		o.CollectionName = ic.Collection
	}
	chunking := map[string]any{"name": "ragnode"}
	if ic.ChunkSize > 0 {
		chunking["chunk_size"] = ic.ChunkSize
	}
	if ic.ChunkOverlap > 0 {
		chunking["chunk_overlap"] = ic.ChunkOverlap
	}
	emb := map[string]any{"dimension": o.Dimension}
	if ic.EmbedderModel != "" {
		emb["model"] = ic.EmbedderModel
	}
	o.IndexationConfig = map[string]any{"indexed_by": "ragnode", "chunking": chunking, "embedder": emb}
	return o
}
