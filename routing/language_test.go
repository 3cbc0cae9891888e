package routing_test

import (
	"testing"

	"github.com/omnigate/omnigate/routing"
)

func TestDefaultDetector(t *testing.T) {
	d := routing.DefaultDetector()
	for text, want := range map[string]string{
		"Hello there, where is my order?": "en",
		"你好，我的订单呢":                        "zh",
		"こんにちは、注文はどこですか":                  "ja",
		"안녕하세요 주문이 어디 있나요":                "ko",
		"12345 !!!":                         "",
		"ok":                                "",
		"Bonjour, où est ma commande ?":     "fr",
		"Hola, ¿dónde está mi pedido?":      "es",
		"Hallo, wo ist meine Bestellung?":   "de",
		"Olá, onde está a minha encomenda?": "pt",
		"Ciao, dov'è il mio ordine?":        "it",
		"Hallo, waar is mijn bestelling?":   "nl",
		"Здравствуйте, где мой заказ?":      "ru",
	} {
		if got := d.Detect(text); got != want {
			t.Errorf("Detect(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestScriptDetectorCJK(t *testing.T) {
	d := routing.ScriptDetectorCJK("en")
	for text, want := range map[string]string{
		"Hello there":                 "en",
		"Bonjour, où est ma commande": "en",
		"订单 12345 status?":            "zh",
		"こんにちは、注文はどこですか":              "ja",
		"안녕하세요":                       "ko",
		"12345 !!!":                   "",
	} {
		if got := d.Detect(text); got != want {
			t.Errorf("Detect(%q) = %q, want %q", text, got, want)
		}
	}
}
