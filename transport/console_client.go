package transport

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// ConsoleEvents reads the replicated event history newer than since,
// oldest first (GET /v1/console/events).
func (c *Client) ConsoleEvents(ctx context.Context, since uint64) ([]ConsoleEvent, error) {
	var out []ConsoleEvent
	q := url.Values{"since": {strconv.FormatUint(since, 10)}}
	if err := c.Do(ctx, http.MethodGet, "/v1/console/events", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}
