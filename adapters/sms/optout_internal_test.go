package sms

import "testing"

func TestMatchKeyword(t *testing.T) {
	tests := []struct {
		in   string
		want keyword
	}{
		{"STOP", kwOptOut}, {"stop", kwOptOut}, {"  Stop.  ", kwOptOut}, {"STOP!", kwOptOut},
		{"stop all", kwOptOut}, {"StopAll", kwOptOut}, {"unsubscribe", kwOptOut}, {"cancel", kwOptOut},
		{"end", kwOptOut}, {"quit", kwOptOut}, {"optout", kwOptOut}, {"opt-out", kwOptOut}, {"opt out", kwOptOut},
		{"revoke", kwOptOut},
		{"START", kwOptIn}, {"yes", kwOptIn}, {"Unstop", kwOptIn},
		{"HELP", kwHelp}, {"info", kwHelp}, {"Help?", kwHelp},
		{"", kwNone}, {"stop it", kwNone}, {"please stop", kwNone}, {"stopp", kwNone},
		{"help me with my order", kwNone}, {"no", kwNone}, {"STOP STOP STOP STOP STOP STOP STOP STOP", kwNone},
	}
	for _, tt := range tests {
		if got, _ := matchKeyword(tt.in); got != tt.want {
			t.Errorf("matchKeyword(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
