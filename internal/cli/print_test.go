package cli

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func metaTime(t time.Time) metav1.Time { return metav1.NewTime(t) }

func TestAge(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		ago  time.Duration
		want string
	}{
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{3 * time.Minute, "3m"},
		{3*time.Minute + 10*time.Second, "3m10s"},
		{2 * time.Hour, "120m"},
		{5 * time.Hour, "5h"},
		{4 * 24 * time.Hour, "4d"},
		{-10 * time.Second, "<invalid>"},
	} {
		pod := &metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(now.Add(-tt.ago))}
		if got := age(pod, now); got != tt.want {
			t.Errorf("age %v = %q, want %q", tt.ago, got, tt.want)
		}
	}
}
