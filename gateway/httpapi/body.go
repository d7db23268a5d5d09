package httpapi

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// RequestBody returns the request body, decoded when Content-Encoding is
// gzip or deflate, and never more than limit bytes once decoded (413
// beyond; 415 for other encodings). Use it instead of fiber's Ctx.Body,
// which decodes without a bound: a 1 MiB gzip bomb inside the body limit
// would become a gigabyte in memory, before any key or signature is checked.
func RequestBody(c *fiber.Ctx, limit int) ([]byte, error) {
	raw := c.Request().Body()
	var zr io.ReadCloser
	var err error
	switch enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding))); enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		zr, err = zlib.NewReader(bytes.NewReader(raw))
	default:
		return nil, fiber.NewError(fiber.StatusUnsupportedMediaType, "Content-Encoding "+enc+" is not supported (use gzip, deflate or none)")
	}
	if err != nil {
		return nil, fiber.NewError(fiber.StatusBadRequest, "body: not "+c.Get(fiber.HeaderContentEncoding)+": "+err.Error())
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, fiber.NewError(fiber.StatusBadRequest, "body: cannot be decoded: "+err.Error())
	}
	if len(out) > limit {
		return nil, fiber.NewError(fiber.StatusRequestEntityTooLarge, "request body is larger than "+strconv.Itoa(limit)+" bytes once decoded")
	}
	return out, nil
}
