package transport

import (
	"context"
	"fmt"
	"net/http"
	"sort"
)

// GET /users/info and the /actors/ dashboard of OpenRAG's admin UI.
//
// /users/info is OpenRAG's UserService.get_current_user_info: the user
// with its memberships, file_count (indexed files), pending_files (tasks
// not yet ended), total_files and file_quota (-1: unlimited). The admin
// UI's upload dialog allows file_quota - total_files more files. A
// ragnode token has no OpenRAG account: it answers as an account with no
// quota (an admin token as an admin), its partition, when it has one, as
// its one membership.
//
// /actors/ lists what OpenRAG lists as its Ray actors: here the cluster's
// indexing nodes, class "Indexer" (a class the admin UI offers to
// restart), named by node name. Restarting one drains the node and takes
// it back: its queued work is handed back to the scheduler and it takes
// new work again.

// Actor is a node in the shape of OpenRAG's Ray actor listing.
type Actor struct {
	ActorID   string `json:"actor_id"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	ClassName string `json:"class_name"`
	State     string `json:"state"` // ALIVE, DEAD or PENDING_CREATION
}

// CompatUsersBackend is the part of a CompatBackend that knows OpenRAG's
// users and the cluster's nodes; a backend without it answers /users/info
// from the token alone and lists no actors.
type CompatUsersBackend interface {
	// UserInfo is /users/info for the OpenRAG user the caller acts as
	// (Caller.UserID).
	UserInfo(ctx context.Context, c Caller) (map[string]any, error)
	Actors(ctx context.Context) ([]Actor, error)
	// RestartActor drains and undrains the named node: errs.NotFound when
	// there is none.
	RestartActor(ctx context.Context, name string) error
	// BeginUpload is asked before an upload to partition is stored. With
	// quota set (a new file, as OpenRAG checks it) it refuses one past the
	// caller's file quota. It returns what to call with the task the
	// upload made, so the task is counted as the caller's.
	BeginUpload(ctx context.Context, c Caller, partition string, quota bool) (func(TaskView), error)
	// PartitionCreated is told the caller created partition, which makes
	// it the partition's owner in OpenRAG's catalog.
	PartitionCreated(ctx context.Context, c Caller, partition string)
}

func (c *compat) users() (CompatUsersBackend, bool) {
	ub, ok := c.b.(CompatUsersBackend)
	return ub, ok
}

// usersInfo is GET /users/info.
func (c *compat) usersInfo(w http.ResponseWriter, r *http.Request) {
	caller, _ := CallerOf(r.Context())
	if ub, ok := c.users(); ok && caller.UserID != 0 {
		info, err := ub.UserInfo(r.Context(), caller)
		if err != nil {
			writeCompatError(w, err, "")
			return
		}
		WriteJSON(w, http.StatusOK, info)
		return
	}
	WriteJSON(w, http.StatusOK, tokenUserInfo(caller))
}

// tokenUserInfo is /users/info for a ragnode token (or an open node).
func tokenUserInfo(c Caller) map[string]any {
	name := c.TokenID
	if name == "" {
		name = "ragnode"
	}
	memberships := []map[string]any{}
	if c.Partition != "" {
		role := RoleViewer
		if roleAccess(c.Role) >= AccessIndex {
			role = RoleEditor
		}
		memberships = append(memberships, map[string]any{"partition": c.Partition, "role": role, "added_at": nil})
	}
	return map[string]any{
		"id": 0, "display_name": name, "external_user_id": nil, "email": nil,
		// An open node (no --token) is everybody's: an admin, as OpenRAG's
		// token mode without AUTH_TOKEN is its admin user.
		"is_admin":    c.Role == "admin" || c.TokenID == "",
		"memberships": memberships,
		"file_count":  0, "pending_files": 0, "total_files": 0, "file_quota": -1,
	}
}

// actors is GET /actors/.
func (c *compat) actors(w http.ResponseWriter, r *http.Request) {
	out := []Actor{}
	if ub, ok := c.users(); ok {
		as, err := ub.Actors(r.Context())
		if err != nil {
			writeCompatError(w, err, "")
			return
		}
		out = append(out, as...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	WriteJSON(w, http.StatusOK, map[string]any{"actors": out})
}

// restartActor is POST /actors/{actor_name}/restart.
func (c *compat) restartActor(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("actor_name")
	unknown := fmt.Sprintf("Unknown actor: %s", name)
	ub, ok := c.users()
	if !ok {
		writeDetail(w, http.StatusNotFound, "%s", unknown)
		return
	}
	var id string
	as, err := ub.Actors(r.Context())
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	for _, a := range as {
		if a.Name == name {
			id = a.ActorID
		}
	}
	if id == "" {
		writeDetail(w, http.StatusNotFound, "%s", unknown)
		return
	}
	if err := ub.RestartActor(r.Context(), name); err != nil {
		writeCompatError(w, err, unknown)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"message": fmt.Sprintf("Actor %s restarted successfully.", name), "actor_name": name, "actor_id": id,
	})
}

// admitUpload asks the users backend, when there is one, whether the
// caller may upload to partition; done is never nil.
func (c *compat) admitUpload(ctx context.Context, partition string, quota bool) (done func(TaskView), err error) {
	done = func(TaskView) {}
	ub, ok := c.users()
	if !ok {
		return done, nil
	}
	caller, _ := CallerOf(ctx)
	d, err := ub.BeginUpload(ctx, caller, partition, quota)
	if err != nil || d == nil {
		return done, err
	}
	return d, nil
}
