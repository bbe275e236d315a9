// Package mcptools will expose tasks.Service to MCP clients such as Claude Code, over
// Streamable HTTP, SSE and stdio. It is not written yet.
package mcptools
