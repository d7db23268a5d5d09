package httpapi

import (
	"encoding/base64"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestKeyFrom(t *testing.T) {
	const key = "K3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK"
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + key))
	tests := []struct {
		name, header, value, want string
	}{
		{"raw authorization (MISP)", "Authorization", key, key},
		{"bearer", "Authorization", "Bearer " + key, key},
		{"bearer lower-case", "Authorization", "bearer " + key, key},
		{"x-misp-auth", "X-MISP-AUTH", key, key},
		{"x-misp-auth list", "X-MISP-AUTH", key + ",other", key},
		{"basic (TAXII)", "Authorization", "Basic " + basic, key},
		{"broken basic", "Authorization", "Basic !!!", ""},
		{"token (taxii2-client)", "Authorization", "Token " + key, key},
		{"basic with key as user", "Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":")), key},
		{"x-api-key", "X-API-Key", key, key},
		{"none", "X-Other", "x", ""},
	}
	app := fiber.New()
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString(KeyFrom(c)) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set(tt.header, tt.value)
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if string(got) != tt.want {
				t.Fatalf("KeyFrom = %q, want %q", got, tt.want)
			}
		})
	}
}
