package config

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var key32 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{EnvBaseURL: "http://127.0.0.1:8080/"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RedirectURI(); got != "http://127.0.0.1:8080/callback" {
		t.Errorf("RedirectURI = %q", got)
	}
	if got := c.LaunchURI(); got != "http://127.0.0.1:8080/launch" {
		t.Errorf("LaunchURI = %q", got)
	}
	if got := c.AppURL(); got != "http://127.0.0.1:8080/calculate/" {
		t.Errorf("AppURL = %q", got)
	}
	if c.LaunchTTL != 10*time.Minute || c.SessionTTL != 8*time.Hour || c.IdleTimeout != 30*time.Minute || c.CDSBudget != 2*time.Second || c.LabLookback != 365*24*time.Hour {
		t.Errorf("defaults: %+v", c)
	}
	if c.Deployed || c.FirestoreProject != "" || c.TokenKey != nil || c.LaunchKey != nil || c.CDSLanguage != "en" {
		t.Errorf("unexpected: %+v", c)
	}
	c, err = Load(env(map[string]string{EnvCDSLanguage: "zh-TW"}))
	if err != nil || c.CDSLanguage != "zh-TW" {
		t.Errorf("SMARTCALC_CDS_LANGUAGE=zh-TW: %v %v", c.CDSLanguage, err)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"deployed without base", map[string]string{EnvKService: "launch", EnvEHRs: "[]", EnvFirestoreProject: "p"}, EnvBaseURL},
		{"deployed without ehrs", map[string]string{EnvKService: "launch", EnvBaseURL: "https://r-p.cloudfunctions.net", EnvFirestoreProject: "p"}, EnvEHRs},
		{"deployed without firestore", map[string]string{EnvKService: "launch", EnvBaseURL: "https://r-p.cloudfunctions.net", EnvEHRs: "[]"}, EnvFirestoreProject},
		{"http base off loopback", map[string]string{EnvBaseURL: "http://example.com"}, EnvBaseURL},
		{"relative base", map[string]string{EnvBaseURL: "/x"}, EnvBaseURL},
		{"short key", map[string]string{EnvTokenKey: base64.StdEncoding.EncodeToString([]byte("short"))}, EnvTokenKey},
		{"key not base64", map[string]string{EnvTokenKey: "!!!"}, EnvTokenKey},
		{"short launch key", map[string]string{EnvLaunchKey: base64.StdEncoding.EncodeToString([]byte("short launch key"))}, EnvLaunchKey},
		{"launch key not base64", map[string]string{EnvLaunchKey: "%%%"}, EnvLaunchKey},
		{"idle timeout too short", map[string]string{EnvIdleTimeout: "1m"}, EnvIdleTimeout},
		{"idle timeout not a duration", map[string]string{EnvIdleTimeout: "30"}, EnvIdleTimeout},
		{"bad duration", map[string]string{EnvLaunchTTL: "ten minutes"}, EnvLaunchTTL},
		{"duration out of range", map[string]string{EnvCDSBudget: "1h"}, EnvCDSBudget},
		{"both ehrs sources", map[string]string{EnvEHRs: "[]", EnvEHRsFile: "/x"}, EnvEHRs},
		{"missing ehrs file", map[string]string{EnvEHRsFile: "/nonexistent/ehrs.json"}, EnvEHRsFile},
		{"bad frame ancestor", map[string]string{EnvFrameAncestors: "http://evil.example"}, EnvFrameAncestors},
		{"CDS language not offered", map[string]string{EnvCDSLanguage: "zh-CN"}, EnvCDSLanguage},
		{"short admin token", map[string]string{EnvAdminToken: "admin-token-too-short"}, EnvAdminToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want one naming %s", err, tt.want)
			}
			for _, k := range []string{EnvTokenKey, EnvLaunchKey, EnvAdminToken} {
				if err != nil && tt.env[k] != "" && strings.Contains(err.Error(), tt.env[k]) {
					t.Errorf("error %q repeats the value of %s", err, k)
				}
			}
		})
	}
}

func TestLoadDeployed(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "ehrs.json")
	if err := os.WriteFile(f, []byte(`[{"id":"x"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{
		EnvKService: "callback", EnvBaseURL: "https://europe-west1-p.cloudfunctions.net",
		EnvEHRsFile: f, EnvFirestoreProject: "p", EnvTokenKey: key32, EnvLaunchKey: key32, EnvSessionTTL: "1h",
		EnvIdleTimeout: "15m", EnvFrameAncestors: "https://ehr.example https://other.example",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Deployed || string(c.EHRs) != `[{"id":"x"}]` || len(c.TokenKey) != 32 || len(c.LaunchKey) != 32 ||
		c.SessionTTL != time.Hour || c.IdleTimeout != 15*time.Minute {
		t.Errorf("got %+v", c)
	}
	if len(c.FrameAncestors) != 2 {
		t.Errorf("FrameAncestors = %v", c.FrameAncestors)
	}
}

func TestSecret(t *testing.T) {
	c, err := Load(env(map[string]string{"SMARTCALC_SECRET_ORACLE_PROD_CLIENT": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := SecretVariable("oracle-prod.client"); got != "SMARTCALC_SECRET_ORACLE_PROD_CLIENT" {
		t.Errorf("SecretVariable = %q", got)
	}
	v, err := c.Secret("oracle-prod.client")
	if err != nil || v != "s3cret" {
		t.Errorf("Secret = %q, %v", v, err)
	}
	_, err = c.Secret("epic-key")
	if !errors.Is(err, ErrSecretMissing) || !strings.Contains(err.Error(), "SMARTCALC_SECRET_EPIC_KEY") {
		t.Errorf("missing secret error = %v", err)
	}
}

func TestVariablesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Variables {
		if seen[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		seen[v.Name] = true
		if v.Doc == "" {
			t.Errorf("%s has no doc", v.Name)
		}
	}
}

func TestAdminToken(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.AdminToken != "" {
		t.Fatalf("unset: %q, %v", c.AdminToken, err)
	}
	tok := strings.Repeat("k", 40)
	c, err = Load(env(map[string]string{EnvAdminToken: " " + tok + "\n"}))
	if err != nil || c.AdminToken != tok {
		t.Errorf("set: %q, %v", c.AdminToken, err)
	}
}
