package mcptools

import (
	"encoding/json"
	"maps"
	"strings"

	"taskhub/tasks"
)

// obj is a JSON Schema of an object with exactly props: required lists those that
// must be present, and no other property is allowed.
func obj(props map[string]any, required ...string) map[string]any {
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// result is the JSON Schema of an object a tool returns: like obj, but open to
// properties added later (the contract lets fields be added), so that a newer task
// never fails the output validation of this server or of a client.
func result(props map[string]any, required ...string) map[string]any {
	s := obj(props, required...)
	delete(s, "additionalProperties")
	return s
}

// with returns props with more added.
func with(props, more map[string]any) map[string]any {
	maps.Copy(props, more)
	return props
}

func raw(schema map[string]any) json.RawMessage {
	b, err := json.Marshal(schema)
	if err != nil {
		panic(err) // maps of literals always marshal
	}
	return b
}

func str(desc string, maxLen int) map[string]any {
	s := map[string]any{"type": "string", "description": desc}
	if maxLen > 0 {
		s["maxLength"] = maxLen
	}
	return s
}

func id(desc string) map[string]any {
	return map[string]any{"type": "integer", "minimum": 1, "description": desc}
}

// nullable is the schema of s or null, with what null means added to s's
// description. It is an anyOf of single-type branches, not a type list
// ("type": ["string", "null"]): clients that map tool schemas onto a single-type
// dialect (such as the OpenAPI subset of Gemini's function declarations) reject
// type lists or drop their constraints.
func nullable(s map[string]any, meaning string) map[string]any {
	branch := maps.Clone(s)
	delete(branch, "description")
	desc, _ := s["description"].(string)
	return map[string]any{
		"anyOf":       []any{branch, map[string]any{"type": "null"}},
		"description": strings.TrimPrefix(desc+"; "+meaning, "; "),
	}
}

func enum[S ~string](values []S, desc string) map[string]any {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return map[string]any{"type": "string", "enum": names, "description": desc}
}

// taskFields are the writable fields of a task, as tool arguments.
func taskFields() map[string]any {
	return map[string]any{
		"title":       map[string]any{"type": "string", "minLength": 1, "maxLength": tasks.MaxTitle, "description": "short summary, 1 to 200 characters"},
		"description": str("details, in Markdown; up to 64 KiB", 0),
		"status":      enum(tasks.Statuses, "where the task stands"),
		"priority":    enum(tasks.Priorities, "urgent > high > medium > low"),
		"assignee":    str("who works on it; empty for nobody", tasks.MaxAssignee),
		"project":     str("the project (repository) the task belongs to", tasks.MaxProject),
		"labels": map[string]any{"type": "array", "maxItems": tasks.MaxLabels, "description": "labels, stored sorted and unique",
			"items": map[string]any{"type": "string", "minLength": 1, "maxLength": tasks.MaxLabel}},
		"parent_id": id("the task this one is a subtask of"),
		"depends_on": map[string]any{"type": "array", "maxItems": tasks.MaxDependsOn, "description": "ids of tasks that must be done before this one is ready",
			"items": map[string]any{"type": "integer", "minimum": 1}},
		"due_at": map[string]any{"type": "string", "format": "date-time", "description": "when it is due, RFC 3339"},
	}
}

// taskSchema describes a task as tools return it.
func taskSchema() map[string]any {
	s := result(map[string]any{
		"id":               map[string]any{"type": "integer"},
		"title":            map[string]any{"type": "string"},
		"description":      map[string]any{"type": "string"},
		"status":           enum(tasks.Statuses, ""),
		"priority":         enum(tasks.Priorities, ""),
		"assignee":         map[string]any{"type": "string"},
		"project":          map[string]any{"type": "string"},
		"labels":           map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		"parent_id":        nullable(map[string]any{"type": "integer"}, "null when it is no subtask"),
		"depends_on":       map[string]any{"type": "array", "items": map[string]any{"type": "integer"}},
		"due_at":           nullable(map[string]any{"type": "string"}, "null when it has no due date"),
		"version":          map[string]any{"type": "integer"},
		"created_at":       map[string]any{"type": "string"},
		"updated_at":       map[string]any{"type": "string"},
		"created_by":       map[string]any{"type": "string"},
		"updated_by":       map[string]any{"type": "string"},
		"lease_expires_at": nullable(map[string]any{"type": "string"}, "when the holder's lease runs out; null when no claim holds one"),
		"progress":         map[string]any{"type": "integer", "minimum": 0, "maximum": tasks.MaxProgress},
		"progress_message": map[string]any{"type": "string"},
	}, "id", "title", "description", "status", "priority", "assignee", "project", "labels",
		"parent_id", "depends_on", "due_at", "version", "created_at", "updated_at", "created_by", "updated_by",
		"lease_expires_at", "progress", "progress_message")
	delete(s["properties"].(map[string]any)["status"].(map[string]any), "description")
	delete(s["properties"].(map[string]any)["priority"].(map[string]any), "description")
	return s
}

// eventSchema describes an event of the log.
func eventSchema() map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"seq":     map[string]any{"type": "integer"},
			"type":    enum(tasks.EventTypes, ""),
			"task_id": map[string]any{"type": "integer"},
			"source":  enum(tasks.Sources, ""),
			"actor":   map[string]any{"type": "string"},
			"time":    map[string]any{"type": "string"},
			"task":    map[string]any{"type": "object"},
			"changes": map[string]any{"type": "object"},
			"note": map[string]any{"anyOf": []any{
				map[string]any{"type": "string", "description": "what the actor said about the change"},
				noteSchema(),
			}, "description": "a task_note_added event's note; else the note of the change, if any"},
			"notes_deleted": map[string]any{"type": "integer", "description": "task_deleted: how many notes went with the task"},
		},
		"required": []string{"seq", "type", "source", "actor", "time"},
	}
}
