package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// checkType peeks at an upload and refuses types the pipeline cannot read.
func (n *Node) checkType(name string, body *bufio.Reader) error {
	head, _ := body.Peek(4096)
	if err := n.pipe.CheckSupported(name, head); err != nil {
		// The loader's message already lists what is supported.
		return errs.Errorf(errs.Unsupported, "%s: %w", name, err)
	}
	return nil
}

// NewTaskID returns 48 lowercase hex characters (24 random bytes), the
// format RAGondin clients expect. IDs are drawn here, never inside Apply.
func NewTaskID() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// Submit implements transport.Backend: store the bytes, then record the task.
func (n *Node) Submit(ctx context.Context, req transport.SubmitRequest, body io.Reader) (transport.TaskView, error) {
	if req.Partition == "" {
		req.Partition = "default"
	}
	if err := validFileID(req.FileID); err != nil {
		return transport.TaskView{}, err
	}
	if err := validPartition(req.Partition); err != nil {
		return transport.TaskView{}, err
	}
	if err := validMetadata(req.Metadata); err != nil {
		return transport.TaskView{}, err
	}
	if err := n.admit(req.Partition, 1, max(req.Size, 0)); err != nil {
		return transport.TaskView{}, err
	}
	if req.FileName == "" {
		req.FileName = filepath.Base(req.FileID)
	}
	var callback *fsm.Callback
	if req.CallbackURL != "" {
		if err := validCallbackURL(req.CallbackURL, n.cfg.CallbackAllowPrivate); err != nil {
			return transport.TaskView{}, err
		}
		callback = &fsm.Callback{URL: req.CallbackURL, Token: req.CallbackToken}
	}
	switch req.Mode {
	case fsm.ModeUpsert, fsm.ModeCreate, fsm.ModeReplace:
	default:
		return transport.TaskView{}, errs.Errorf(errs.Invalid, "mode must be create, replace or empty")
	}
	ref := fsm.FileRef{Name: req.FileName}
	var cmds []fsm.Command
	now := time.Now().UnixNano()
	if req.SharedPath != "" {
		real, size, err := n.checkShared(ctx, req.SharedPath, req.FileName)
		if err != nil {
			if errs.KindOf(err) == nil {
				err = errs.Wrap(errs.Invalid, err) // unreadable now: the caller's to fix
			}
			return transport.TaskView{}, err
		}
		req.SharedPath = real
		ref.SharedPath, ref.Size = real, size
	} else {
		br := bufio.NewReaderSize(body, 4096)
		if err := n.checkType(req.FileName, br); err != nil {
			return transport.TaskView{}, err
		}
		hash, size, err := n.blobs.Put(br, n.cfg.MaxFileSize, "")
		if err != nil {
			n.noteDiskFault(err)
			return transport.TaskView{}, err
		}
		ref.Hash, ref.Size = hash, size
		holders := n.replicate(ctx, hash, n.cfg.Replicas-1, []string{n.id})
		cmds = append(cmds, fsm.Command{Type: fsm.CmdBlobHolders, Now: now, Blob: &fsm.Blob{Hash: hash, Size: size, Holders: holders}})
	}
	t := fsm.Task{ID: NewTaskID(), Partition: req.Partition, FileID: req.FileID, File: ref, Metadata: req.Metadata,
		ReqMilli: n.cfg.TaskMilli, ReqMem: n.cfg.TaskMem, Mode: req.Mode, Callback: callback}
	cmds = append(cmds, fsm.Command{Type: fsm.CmdSubmitTasks, Now: now, Tasks: []fsm.Task{t}})
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds})
	if err != nil {
		return transport.TaskView{}, fmt.Errorf("submit %s: %w", req.FileID, err)
	}
	sub := res.Batch[len(res.Batch)-1]
	// "duplicate task id" for this request's own fresh ID means an earlier try
	// of this same proposal was committed and the proposer retried after
	// losing the answer: the task is recorded, the submission succeeded.
	if len(sub.Batch) == 1 {
		if err := sub.Batch[0].Error(); err != nil && !errors.Is(err, fsm.ErrDuplicate) {
			return transport.TaskView{}, fmt.Errorf("submit %s: %w", req.FileID, err)
		}
	}
	var tv transport.TaskView
	var found bool
	n.fsm.View(func(s *fsm.State) {
		if st := s.Tasks[t.ID]; st != nil {
			tv, found = viewOf(st), true
		}
	})
	if !found {
		t.State = fsm.Queued
		t.Attempt = 1
		tv = viewOf(&t)
	}
	return tv, nil
}
