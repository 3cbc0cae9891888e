//go:build race

package main

// raceEnabled says the tests run under the race detector, which makes a
// running omnigate several times slower: the replayed days are shorter.
const raceEnabled = true
