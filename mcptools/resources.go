package mcptools

import (
	"context"
	"encoding/json"
	"fmt"

	"taskhub/tasks"

	"github.com/mark3labs/mcp-go/mcp"
)

func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(
		mcp.NewResourceTemplate(taskURIPrefix+"{id}", "task",
			mcp.WithTemplateTitle("Task"),
			mcp.WithTemplateDescription("One task as JSON, as get_task returns it. Subscribe to be told when it changes."),
			mcp.WithTemplateMIMEType("application/json")),
		s.readTask)
}

func (s *Server) readTask(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	id, ok := parseTaskURI(req.Params.URI)
	if !ok {
		return nil, fmt.Errorf("%q is not a task URI: want %s{id}", req.Params.URI, taskURIPrefix)
	}
	t, err := s.svc.Get(ctx, id)
	if err != nil {
		if e, ok := asError(err); ok && e.Code != tasks.EInternal {
			return nil, fmt.Errorf("%s", e.Message)
		}
		s.logger.Error("read resource", "uri", req.Params.URI, "err", err)
		return nil, fmt.Errorf("internal error")
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(b)}}, nil
}
