package mcptools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// validator checks a call's arguments against its tool's input schema before the
// tool runs, and words each violation around the argument it is about: mcp-go's own
// validation reports them in Go syntax.
type validator struct {
	schemas map[string]*jsonschema.Schema
	printer *message.Printer
}

func newValidator(tools []tool) *validator {
	v := &validator{schemas: map[string]*jsonschema.Schema{}, printer: message.NewPrinter(language.English)}
	c := jsonschema.NewCompiler()
	for _, t := range tools {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(t.tool.RawInputSchema))
		if err != nil {
			panic(fmt.Sprintf("tool %s: input schema: %v", t.tool.Name, err)) // the schemas are literals
		}
		url := "mem:///tools/" + t.tool.Name + ".json"
		if err := c.AddResource(url, doc); err != nil {
			panic(fmt.Sprintf("tool %s: input schema: %v", t.tool.Name, err))
		}
		if v.schemas[t.tool.Name], err = c.Compile(url); err != nil {
			panic(fmt.Sprintf("tool %s: input schema: %v", t.tool.Name, err))
		}
	}
	return v
}

// middleware refuses a call whose arguments break the schema, with an isError result.
func (v *validator) middleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		schema, ok := v.schemas[req.Params.Name]
		if !ok {
			return next(ctx, req)
		}
		args := req.GetRawArguments()
		if args == nil {
			args = map[string]any{}
		}
		b, err := json.Marshal(args)
		if err != nil {
			return mcp.NewToolResultError("invalid_argument: the arguments are not JSON"), nil
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return mcp.NewToolResultError("invalid_argument: the arguments are not JSON"), nil
		}
		if err := schema.Validate(doc); err != nil {
			if verr, ok := err.(*jsonschema.ValidationError); ok {
				return mcp.NewToolResultError("invalid_argument: " + strings.Join(v.describe(verr, schema), "; ")), nil
			}
			return mcp.NewToolResultError("invalid_argument: " + err.Error()), nil
		}
		return next(ctx, req)
	}
}

// describe words the leaves of a validation error, each naming its argument.
func (v *validator) describe(e *jsonschema.ValidationError, schema *jsonschema.Schema) []string {
	if _, ok := e.ErrorKind.(*kind.AnyOf); ok {
		e = v.anyOf(e)
	}
	if len(e.Causes) > 0 {
		var out []string
		for _, c := range e.Causes {
			out = append(out, v.describe(c, schema)...)
		}
		return out
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return []string{fmt.Sprintf("missing required argument %s", strings.Join(k.Missing, ", "))}
	case *kind.AdditionalProperties:
		known := make([]string, 0, len(schema.Properties))
		for name := range schema.Properties {
			known = append(known, name)
		}
		slices.Sort(known)
		return []string{fmt.Sprintf("unknown argument %s (known: %s)", strings.Join(k.Properties, ", "), strings.Join(known, ", "))}
	}
	if len(e.InstanceLocation) == 0 {
		return []string{e.ErrorKind.LocalizedString(v.printer)}
	}
	return []string{fmt.Sprintf("argument %s: %s", strings.Join(e.InstanceLocation, "/"), e.ErrorKind.LocalizedString(v.printer))}
}

// anyOf narrows the error of a value that matched no branch of an anyOf (the
// nullable fields: a type or null) to what is worth saying: the faults of the
// branches of the value's type when there are some ('tomorrow' is not a date-time),
// else the one type error of them all (got number, want string or null).
func (v *validator) anyOf(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	var typeErr *kind.Type
	var rest []*jsonschema.ValidationError
	for _, c := range e.Causes {
		if k, ok := c.ErrorKind.(*kind.Type); ok && len(c.Causes) == 0 {
			if typeErr == nil {
				typeErr = &kind.Type{Got: k.Got}
			}
			typeErr.Want = append(typeErr.Want, k.Want...)
			continue
		}
		rest = append(rest, c)
	}
	narrowed := *e
	if len(rest) > 0 {
		narrowed.Causes = rest
		return &narrowed
	}
	if typeErr != nil {
		narrowed.Causes, narrowed.ErrorKind = nil, typeErr
	}
	return &narrowed
}
