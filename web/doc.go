// Package web will hold the embedded live dashboard. It is not written yet.
package web
