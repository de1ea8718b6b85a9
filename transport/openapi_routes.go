package transport

// compatRoutes describes every route MountCompat registers, keyed by the
// exact ServeMux pattern: GET /openapi.json is built from it, and
// TestOpenAPICoversEveryRoute compares it with the registrations in
// compat.go's source, so a route cannot be added without its entry here.
var compatRoutes = []routeDoc{
	{Pattern: "POST /indexer/partition/{partition}/file/{file_id}", Summary: "Upload and index a new file", Source: "R indexer.py add_file; O admin/indexing.py",
		Form: []paramDoc{{"file", "file", true}, {"metadata", "JSON object", false}, {"workspace_ids", "JSON array (accepted, ignored)", false},
			{"callback_url", "URL POSTed when the task ends", false}, {"callback_token", "bearer token of the callback", false}},
		Responses: map[int]string{201: "{task_status_url}", 400: "bad metadata, file ID or callback_url", 409: "file exists", 413: "too large", 415: "unsupported type", 422: "no file part"}},
	{Pattern: "PUT /indexer/partition/{partition}/file/{file_id}", Summary: "Replace a file", Source: "R put_file; O",
		Form:      []paramDoc{{"file", "file", true}, {"metadata", "JSON object", false}, {"callback_url", "URL", false}, {"callback_token", "token", false}},
		Responses: map[int]string{202: "{task_status_url}", 404: "file missing"}},
	{Pattern: "PATCH /indexer/partition/{partition}/file/{file_id}", Summary: "Merge metadata; a partition key moves the file", Source: "R patch_file; O update_metadata",
		Form: []paramDoc{{"metadata", "JSON object", false}}, Responses: map[int]string{200: "{message}", 404: "file missing", 409: "move target exists"}},
	{Pattern: "DELETE /indexer/partition/{partition}/file/{file_id}", Summary: "Delete a file", Source: "R delete_file", Responses: map[int]string{204: "deleted", 404: "file missing"}},
	{Pattern: "POST /indexer/partition/{partition}/file/{file_id}/copy", Summary: "Copy a file from another partition without re-embedding", Source: "O copy_file_between_partitions",
		Form:      []paramDoc{{"source_partition", "string", true}, {"source_file_id", "string", true}, {"metadata", "JSON object", false}},
		Responses: map[int]string{201: "{message}", 404: "source missing", 409: "target exists", 422: "missing form field"}},
	{Pattern: "GET /indexer/supported/types", Summary: "Supported extensions and MIME types", Source: "O get_supported_types", Responses: map[int]string{200: "{extensions, mimetypes}"}},
	{Pattern: "GET /indexer/task/{task_id}", Summary: "Task state", Source: "R get_task_status", Responses: map[int]string{200: "{task_id, task_state, details[, error_url]}", 404: "unknown task"}},
	{Pattern: "DELETE /indexer/task/{task_id}", Summary: "Cancel a task", Source: "O cancel_task", Responses: map[int]string{200: "{message}", 404: "unknown task", 409: "already final"}},
	{Pattern: "GET /indexer/task/{task_id}/error", Summary: "A failed or cancelled task's error", Source: "R get_task_error", Responses: map[int]string{200: "{task_id, traceback}", 404: "no error"}},
	{Pattern: "GET /indexer/task/{task_id}/logs", Summary: "A task's history as log lines", Source: "R get_task_logs",
		Query: []paramDoc{{"max_lines", "integer", false}}, Responses: map[int]string{200: "{task_id, logs}", 404: "no logs"}},
	{Pattern: "GET /partition", Summary: "List partitions", Source: "R list_existant_partitions; O", Query: pageDocs, Responses: map[int]string{200: "{partitions[, total]}"}},
	{Pattern: "GET /partition/{$}", Path: "/partition/", Summary: "List partitions (trailing slash)", Source: "R", Query: pageDocs, Responses: map[int]string{200: "{partitions[, total]}"}},
	{Pattern: "GET /partition/{partition}", Summary: "List a partition's files", Source: "O list_files", Query: pageDocs, Responses: map[int]string{200: "{files[, total]}", 404: "no partition"}},
	{Pattern: "GET /partition/{partition}/{$}", Path: "/partition/{partition}/", Summary: "List a partition's files (trailing slash)", Source: "R", Query: pageDocs, Responses: map[int]string{200: "{files[, total]}", 404: "no partition"}},
	{Pattern: "DELETE /partition/{partition}", Summary: "Delete a partition and its files", Source: "R; O", Responses: map[int]string{204: "deleted", 404: "no partition"}},
	{Pattern: "DELETE /partition/{partition}/{$}", Path: "/partition/{partition}/", Summary: "Delete a partition (trailing slash)", Source: "R", Responses: map[int]string{204: "deleted", 404: "no partition"}},
	{Pattern: "GET /partition/check-file/{partition}/file/{file_id}", Summary: "Whether a file exists", Source: "R", Responses: map[int]string{200: "message string", 404: "file missing"}},
	{Pattern: "GET /partition/{partition}/file/{file_id}", Summary: "A file's metadata and chunk links", Source: "R get_file; O",
		Query: []paramDoc{{"limit", "integer (default 2000)", false}}, Responses: map[int]string{200: "{metadata, documents}", 404: "file missing"}},
	{Pattern: "GET /partition/{partition}/chunks", Summary: "A partition's chunks", Source: "R list_all_chunks; O",
		Query:     []paramDoc{{"file_id", "string", false}, {"limit", "integer", false}, {"include_embedding", "boolean", false}},
		Responses: map[int]string{200: "{chunks[, total]}", 404: "no partition or file"}},
	{Pattern: "GET /extract/{extract_id}", Summary: "One chunk", Source: "R extract.py", Responses: map[int]string{200: "{page_content, metadata}", 404: "no such chunk"}},
	{Pattern: "POST /partition/{partition}", Summary: "Create an empty partition", Source: "O create_partition", Responses: map[int]string{201: "created", 400: "bad name", 409: "exists"}},
	{Pattern: "PATCH /partition/{partition}", Summary: "Store a partition's configuration", Source: "O (UpdatePartitionRequest)",
		Body: "JSON {description, embedder, indexation_preset, retrieval_preset, chat_history_depth, chat_llm}", Responses: map[int]string{200: "PartitionDetailResponse", 404: "no partition", 422: "invalid body"}},
	{Pattern: "GET /partition/{partition}/config", Summary: "A partition's configuration", Source: "O", Responses: map[int]string{200: "PartitionDetailResponse", 404: "no partition"}},
	// One mux pattern serves both (compat_related.go): a relationship ID is
	// a path, which no single-segment wildcard next to the ancestors route
	// can take.
	{Pattern: "GET /partition/{partition}/{kind}/{rest...}", Path: "/partition/{partition}/relationships/{relationship_id}", Summary: "Files sharing a relationship_id (which may hold slashes)", Source: "O get_related_files ({relationship_id:path})", Responses: map[int]string{200: "{files}", 404: "no partition"}},
	{Pattern: "GET /partition/{partition}/{kind}/{rest...}", Path: "/partition/{partition}/file/{file_id}/ancestors", Summary: "A file's ancestors by parent_id, root first", Source: "O get_file_ancestors",
		Query: []paramDoc{{"max_ancestor_depth", "integer", false}}, Responses: map[int]string{200: "{ancestors}", 404: "file missing"}},
	{Pattern: "GET /search", Summary: "Search partitions", Source: "R search.py; O", Query: searchDocs, Responses: map[int]string{200: "{documents}", 400: "bad filter", 422: "invalid parameter"}},
	{Pattern: "GET /search/{$}", Path: "/search/", Summary: "Search partitions (trailing slash)", Source: "R", Query: searchDocs, Responses: map[int]string{200: "{documents}", 400: "bad filter", 422: "invalid parameter"}},
	{Pattern: "GET /search/partition/{partition}", Summary: "Search one partition", Source: "R; O", Query: searchDocs, Responses: map[int]string{200: "{documents}", 400: "bad filter", 422: "invalid parameter"}},
	{Pattern: "GET /search/partition/{partition}/file/{file_id}", Summary: "Search one file", Source: "R; O", Query: searchDocs, Responses: map[int]string{200: "{documents}", 400: "bad filter", 422: "invalid parameter"}},
	{Pattern: "GET /health_check", Summary: "Liveness (no token)", Source: "R", Responses: map[int]string{200: "message string"}},
	{Pattern: "GET /version", Summary: "Version (no token)", Source: "O", Responses: map[int]string{200: "{version, server}"}},
	{Pattern: "GET /queue/info", Summary: "Capacity and task counts", Source: "R queue.py", Responses: map[int]string{200: "{workers, tasks}"}},
	{Pattern: "GET /queue/tasks", Summary: "Tasks by state, paged", Source: "R list_tasks",
		Query:     []paramDoc{{"task_status", "string", false}, {"status", "string (older UI)", false}, {"offset", "integer", false}, {"limit", "integer", false}},
		Responses: map[int]string{200: "{tasks, total, offset, limit}"}},
	{Pattern: "GET /openapi.json", Summary: "This description", Source: "FastAPI's /openapi.json", Responses: map[int]string{200: "OpenAPI 3.1 document"}},
	{Pattern: "GET /users/info", Summary: "The caller's account: role, memberships, file quota and usage", Source: "O admin/users.py get_current_user_info",
		Responses: map[int]string{200: "{id, display_name, is_admin, memberships, file_count, pending_files, total_files, file_quota}"}},
	{Pattern: "GET /actors/{$}", Path: "/actors/", Summary: "The cluster's indexing nodes, as OpenRAG lists its Ray actors (admin)", Source: "O admin/cluster.py list_ray_actors",
		Responses: map[int]string{200: "{actors: [{actor_id, namespace, name, class_name, state}]}", 403: "not an admin"}},
	{Pattern: "POST /actors/{actor_name}/restart", Summary: "Drain a node and take it back into service (admin)", Source: "O admin/cluster.py restart_ray_actor",
		Responses: map[int]string{200: "{message, actor_name, actor_id}", 404: "unknown actor"}},
}

var pageDocs = []paramDoc{{"limit", "integer", false}, {"offset", "integer", false}}

var searchDocs = []paramDoc{{"text", "string", true}, {"top_k", "integer", false}, {"similarity_threshold", "number 0..1", false},
	{"partitions", "string, repeated (all routes but /search/partition)", false}, {"filter", "Milvus boolean expression", false},
	{"include_related", "boolean", false}, {"include_ancestors", "boolean", false}, {"related_limit", "integer", false}, {"max_ancestor_depth", "integer", false}}
