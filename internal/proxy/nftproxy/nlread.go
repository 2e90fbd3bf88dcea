package nftproxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fjord-net/fjord/internal/nfnl"
)

// A full sync must learn which chains, sets and maps the table holds and,
// per chain, how many rules it has and the last rule's comment. nft's JSON
// for that is tens of megabytes at 10,000 services and takes seconds to
// produce and parse; the kernel answers the same questions over netlink in
// a few streamed dumps, without formatting a single expression. This file
// reads those dumps and keeps only the summary.

// netlinkTable is what the netlink dumps say about the table.
type netlinkTable struct {
	found bool
	// use is the kernel's count of the table's chains, sets (anonymous ones
	// too) and other objects: it moves when anyone adds or deletes one.
	use        uint32
	chains     map[string]chainState
	containers map[string]bool // name -> is a map
	missing    []string        // chains of rulesOf that do not exist
}

// readTableNetlink reads the table's use count and named sets and maps,
// and then either (all) every chain with its rule summary, or only the rule
// summaries of the chains in rulesOf, without listing the others: at
// 30,000 services the chain dump alone is some 120,000 objects. It runs in
// the calling thread's network namespace. A dump that a concurrent change
// interrupts is retried a few times.
func readTableNetlink(family uint8, table string, all bool, rulesOf []string) (netlinkTable, error) {
	var err error
	for range 5 {
		var t netlinkTable
		t, err = readTableOnce(family, table, all, rulesOf)
		if !errors.Is(err, nfnl.ErrDumpInterrupted) {
			return t, err
		}
	}
	return netlinkTable{}, err
}

func readTableOnce(family uint8, table string, all bool, rulesOf []string) (netlinkTable, error) {
	t := netlinkTable{chains: map[string]chainState{}, containers: map[string]bool{}}
	nl, err := nfnl.Dial()
	if err != nil {
		return t, err
	}
	defer nl.Close()

	tableAttr := nfnl.Attr(1, nfnl.CString(table)) // NFTA_{TABLE_NAME,CHAIN_TABLE,SET_TABLE,RULE_TABLE} are all 1
	err = nl.Dump(unix.NFT_MSG_GETTABLE, family, nil, func(attrs []byte) {
		if name, ok := nfnl.StringAttr(attrs, unix.NFTA_TABLE_NAME); ok && name == table {
			t.found, t.use = true, nfnl.Uint32Attr(attrs, unix.NFTA_TABLE_USE)
		}
	})
	if err != nil || !t.found {
		return t, err
	}
	if all {
		err = nl.Dump(unix.NFT_MSG_GETCHAIN, family, tableAttr, func(attrs []byte) {
			if tb, _ := nfnl.StringAttr(attrs, unix.NFTA_CHAIN_TABLE); tb != table {
				return
			}
			if name, ok := nfnl.StringAttr(attrs, unix.NFTA_CHAIN_NAME); ok {
				t.chains[name] = chainState{}
			}
		})
		if err != nil {
			return t, err
		}
	}
	err = nl.Dump(unix.NFT_MSG_GETSET, family, tableAttr, func(attrs []byte) {
		if tb, _ := nfnl.StringAttr(attrs, unix.NFTA_SET_TABLE); tb != table {
			return
		}
		name, ok := nfnl.StringAttr(attrs, unix.NFTA_SET_NAME)
		flags := nfnl.Uint32Attr(attrs, unix.NFTA_SET_FLAGS)
		if !ok || flags&unix.NFT_SET_ANONYMOUS != 0 {
			return // anonymous sets belong to rules, as in nft's listing
		}
		t.containers[name] = flags&unix.NFT_SET_MAP != 0
	})
	if err != nil {
		return t, err
	}
	if all {
		rulesOf = make([]string, 0, len(t.chains))
		for name := range t.chains {
			rulesOf = append(rulesOf, name)
		}
	}
	// One dump per chain: the kernel finds a named chain directly, while a
	// dump of the whole table walks it again from the start for every 32 KB
	// it returns, which grows with the square of the table.
	for _, chain := range rulesOf {
		var st chainState
		req := append(slices.Clone(tableAttr), nfnl.Attr(unix.NFTA_RULE_CHAIN, nfnl.CString(chain))...)
		err = nl.Dump(unix.NFT_MSG_GETRULE, family, req, func(attrs []byte) {
			st.rules++
			st.fp = ""
			if c := nfnl.RuleComment(nfnl.AttrBytes(attrs, unix.NFTA_RULE_USERDATA)); strings.HasPrefix(c, fingerprintPrefix) {
				st.fp = c
			}
		})
		if errors.Is(err, unix.ENOENT) {
			t.missing = append(t.missing, chain)
			continue
		}
		if err != nil {
			return t, fmt.Errorf("rules of chain %s: %w", chain, err)
		}
		t.chains[chain] = st
	}
	return t, nil
}

// tableUseNetlink reads the table's use count (0 when there is no table).
func tableUseNetlink(family uint8, table string) (uint32, error) {
	nl, err := nfnl.Dial()
	if err != nil {
		return 0, err
	}
	defer nl.Close()
	var use uint32
	err = nl.Dump(unix.NFT_MSG_GETTABLE, family, nil, func(attrs []byte) {
		if name, ok := nfnl.StringAttr(attrs, unix.NFTA_TABLE_NAME); ok && name == table {
			use = nfnl.Uint32Attr(attrs, unix.NFTA_TABLE_USE)
		}
	})
	return use, err
}

// countElementsNetlink counts the elements of a named set or map.
func countElementsNetlink(family uint8, table, set string) (int, error) {
	var n int
	var err error
	for range 5 {
		n, err = countElementsOnce(family, table, set)
		if !errors.Is(err, nfnl.ErrDumpInterrupted) {
			break
		}
	}
	return n, err
}

func countElementsOnce(family uint8, table, set string) (int, error) {
	nl, err := nfnl.Dial()
	if err != nil {
		return 0, err
	}
	defer nl.Close()
	req := append(nfnl.Attr(unix.NFTA_SET_ELEM_LIST_TABLE, nfnl.CString(table)), nfnl.Attr(unix.NFTA_SET_ELEM_LIST_SET, nfnl.CString(set))...)
	n := 0
	err = nl.Dump(unix.NFT_MSG_GETSETELEM, family, req, func(attrs []byte) {
		nfnl.ForEachAttr(nfnl.AttrBytes(attrs, unix.NFTA_SET_ELEM_LIST_ELEMENTS), func(typ uint16, _ []byte) {
			if typ == unix.NFTA_LIST_ELEM {
				n++
			}
		})
	})
	return n, err
}
