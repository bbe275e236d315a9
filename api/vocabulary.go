package api

import (
	"net/http"

	"taskhub/broadcaster"
	"taskhub/tasks"

	"github.com/labstack/echo/v4"
)

// vocabulary is the answer of GET /api/vocabulary: the domain's sets of values and
// their orders, and the limits a form needs, all read from package tasks, so that a
// client (the dashboard) keeps no copy of them.
type vocabulary struct {
	Statuses   []tasks.Status    `json:"statuses"`   // in board order
	Priorities []tasks.Priority  `json:"priorities"` // lowest first
	EventTypes []tasks.EventType `json:"event_types"`
	Sources    []tasks.Source    `json:"sources"`
	Limits     vocabularyLimits  `json:"limits"`
}

// vocabularyLimits are the contract's limits, in characters unless the name says
// otherwise.
type vocabularyLimits struct {
	Title            int `json:"title"`
	DescriptionBytes int `json:"description_bytes"`
	Assignee         int `json:"assignee"`
	Project          int `json:"project"`
	Labels           int `json:"labels"` // how many
	Label            int `json:"label"`
	DependsOn        int `json:"depends_on"` // how many
	ListLimit        int `json:"list_limit"`
	EventsLimit      int `json:"events_limit"`
	TextQuery        int `json:"text_query"`
	NoteText         int `json:"note_text"`
	NoteTextBytes    int `json:"note_text_bytes"`
	NotesPerTask     int `json:"notes_per_task"` // how many
}

func (h *handlers) vocabulary(c echo.Context) error {
	if _, err := params(c, broadcaster.Params{}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, vocabulary{
		Statuses:   tasks.Statuses,
		Priorities: tasks.Priorities,
		EventTypes: tasks.EventTypes,
		Sources:    tasks.Sources,
		Limits: vocabularyLimits{
			Title:            tasks.MaxTitle,
			DescriptionBytes: tasks.MaxDescriptionLen,
			Assignee:         tasks.MaxAssignee,
			Project:          tasks.MaxProject,
			Labels:           tasks.MaxLabels,
			Label:            tasks.MaxLabel,
			DependsOn:        tasks.MaxDependsOn,
			ListLimit:        tasks.MaxListLimit,
			EventsLimit:      tasks.MaxEventsLimit,
			TextQuery:        tasks.MaxTextQuery,
			NoteText:         tasks.MaxNoteText,
			NoteTextBytes:    tasks.MaxNoteTextBytes,
			NotesPerTask:     tasks.MaxNotesPerTask,
		},
	})
}

// StreamVocabulary is what the stream's filters may name: the domain's event types,
// statuses and sources.
func StreamVocabulary() broadcaster.Vocabulary {
	return broadcaster.Vocabulary{
		Types: names(tasks.EventTypes), Statuses: names(tasks.Statuses), Sources: names(tasks.Sources),
	}
}

func names[S ~string](values []S) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
