package trace

// Drops outside netfilter (no route, MTU, rp_filter, a closed port, a failed
// neighbour) are reported by the kernel's skb:kfree_skb tracepoint with a drop reason.
// This kernel has no kprobes, so a BPF program attached to the raw tracepoint reads
// the dropped skb's headers and keeps only the probe's packets (its port or ICMP id,
// also inside VXLAN), sending each to user space through a ring buffer with the reason,
// the code location, the device and the network namespace. No tracefs, no enablement
// file: the program is attached through a file descriptor and goes when it closes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// ProgramName is the name of the BPF program a trace loads (tests look for it).
const ProgramName = "fjord_kfree"

// DropEvent is one kfree_skb of a probe packet.
type DropEvent struct {
	Reason    uint32
	Ifindex   uint32
	Location  uint64
	NetnsInum uint32
	Skb       uint64
	Packet    []byte // the first bytes from the network header
	Time      time.Time
}

// eventSize is the ring buffer record: reason u32, ifindex u32, location u64,
// netns inode u32, pad u32, skb u64, 96 bytes of packet.
const (
	eventSize  = 128
	packetSize = 96
)

// ParseDropEvent decodes a ring buffer record (native byte order, as the kernel wrote it).
func ParseDropEvent(b []byte) (DropEvent, error) {
	if len(b) < eventSize {
		return DropEvent{}, fmt.Errorf("drop event of %d bytes, want %d", len(b), eventSize)
	}
	ne := binary.NativeEndian
	return DropEvent{Reason: ne.Uint32(b[0:]), Ifindex: ne.Uint32(b[4:]), Location: ne.Uint64(b[8:]),
		NetnsInum: ne.Uint32(b[16:]), Skb: ne.Uint64(b[24:]), Packet: append([]byte(nil), b[32:32+packetSize]...)}, nil
}

// kernelLayout holds the struct offsets (bytes) the program needs, read from BTF.
type kernelLayout struct {
	skbHead, skbNetworkHeader, skbDev uint32
	devIfindex, devNdNet, netNsInum   uint32
	reasons                           map[uint32]string
}

// loadLayout reads the offsets and the drop reason names from the kernel's BTF.
func loadLayout() (kernelLayout, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return kernelLayout{}, fmt.Errorf("kernel BTF: %w", err)
	}
	var l kernelLayout
	var skb, dev, net *btf.Struct
	for name, p := range map[string]**btf.Struct{"sk_buff": &skb, "net_device": &dev, "net": &net} {
		if err := spec.TypeByName(name, p); err != nil {
			return l, fmt.Errorf("kernel BTF: struct %s: %w", name, err)
		}
	}
	for _, f := range []struct {
		t    *btf.Struct
		path []string
		dst  *uint32
	}{
		{skb, []string{"head"}, &l.skbHead},
		{skb, []string{"network_header"}, &l.skbNetworkHeader},
		{skb, []string{"dev"}, &l.skbDev},
		{dev, []string{"ifindex"}, &l.devIfindex},
		{dev, []string{"nd_net", "net"}, &l.devNdNet},
		{net, []string{"ns", "inum"}, &l.netNsInum},
	} {
		off, ok := memberOffset(f.t, f.path)
		if !ok {
			return l, fmt.Errorf("kernel BTF: no member %s in %s", strings.Join(f.path, "."), f.t.Name)
		}
		*f.dst = off
	}
	l.reasons = map[uint32]string{}
	var reasons *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &reasons); err == nil {
		for _, v := range reasons.Values {
			l.reasons[uint32(v.Value)] = strings.TrimPrefix(v.Name, "SKB_DROP_REASON_")
		}
	}
	return l, nil
}

// memberOffset finds a member by path, looking through anonymous structs and unions,
// and returns its byte offset.
func memberOffset(t btf.Type, path []string) (uint32, bool) {
	var members []btf.Member
	switch s := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		members = s.Members
	case *btf.Union:
		members = s.Members
	default:
		return 0, false
	}
	for _, m := range members {
		if m.Name == path[0] {
			if m.Offset%8 != 0 {
				return 0, false
			}
			if len(path) == 1 {
				return uint32(m.Offset / 8), true
			}
			off, ok := memberOffset(m.Type, path[1:])
			return uint32(m.Offset/8) + off, ok
		}
		if m.Name == "" { // anonymous struct or union
			if off, ok := memberOffset(m.Type, path); ok {
				return uint32(m.Offset/8) + off, true
			}
		}
	}
	return 0, false
}

// Match says which packets the program keeps: IPv4 packets (or VXLAN-encapsulated ones
// on VXLANPort) whose TCP/UDP source or destination port is Port, or ICMP echoes with
// identifier ICMPID.
type Match struct {
	Port      uint16
	ICMPID    uint16
	VXLANPort uint16
}

// Stack layout of the program (offsets from the frame pointer).
const (
	evOff    = -128 // the event
	headOff  = -136
	nhOff    = -144
	devOff   = -152
	ndnetOff = -160
	pktOff   = evOff + 32
)

// program builds the BPF instructions for l and m.
func program(l kernelLayout, m Match, ringFD int) asm.Instructions {
	pk := func(i int16) int16 { return pktOff + i }
	read := func(dst int16, size int32, srcReg asm.Register, srcOff int32) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, int32(dst)),
			asm.Mov.Imm(asm.R2, size),
			asm.Mov.Reg(asm.R3, srcReg), asm.Add.Imm(asm.R3, srcOff),
			asm.FnProbeReadKernel.Call(),
		}
	}
	// be16 loads the big-endian u16 of the packet at at into dst; label names its first
	// instruction ("" none).
	be16 := func(dst asm.Register, at int16, label string) asm.Instructions {
		first := asm.LoadMem(dst, asm.RFP, pk(at), asm.Byte)
		if label != "" {
			first = first.WithSymbol(label)
		}
		return asm.Instructions{
			first, asm.LSh.Imm(dst, 8),
			asm.LoadMem(asm.R5, asm.RFP, pk(at+1), asm.Byte), asm.Or.Reg(dst, asm.R5),
		}
	}
	var p asm.Instructions
	add := func(ins ...asm.Instruction) { p = append(p, ins...) }
	add(asm.Mov.Reg(asm.R6, asm.R1), asm.LoadMem(asm.R7, asm.R6, 0, asm.DWord))
	add(asm.Mov.Imm(asm.R9, 0)) // r9 stays 0: stores of zero (no 64-bit immediate stores)
	for k := int16(0); k < eventSize/8; k++ {
		add(asm.StoreMem(asm.RFP, evOff+8*k, asm.R9, asm.DWord))
	}
	add(read(headOff, 8, asm.R7, int32(l.skbHead))...)
	add(asm.JNE.Imm(asm.R0, 0, "exit"))
	add(asm.StoreMem(asm.RFP, nhOff, asm.R9, asm.DWord))
	add(read(nhOff, 2, asm.R7, int32(l.skbNetworkHeader))...)
	add(asm.JNE.Imm(asm.R0, 0, "exit"))
	add(asm.LoadMem(asm.R3, asm.RFP, headOff, asm.DWord), asm.LoadMem(asm.R4, asm.RFP, nhOff, asm.Half), asm.Add.Reg(asm.R3, asm.R4))
	add(asm.Mov.Reg(asm.R1, asm.RFP), asm.Add.Imm(asm.R1, pktOff), asm.Mov.Imm(asm.R2, packetSize), asm.FnProbeReadKernel.Call())
	add(asm.JNE.Imm(asm.R0, 0, "exit"))
	// Outer IPv4 header without options.
	add(asm.LoadMem(asm.R1, asm.RFP, pk(0), asm.Byte), asm.JNE.Imm(asm.R1, 0x45, "exit"))
	add(asm.LoadMem(asm.R2, asm.RFP, pk(9), asm.Byte))
	add(asm.JEq.Imm(asm.R2, 1, "icmp"), asm.JEq.Imm(asm.R2, 6, "ports"), asm.JNE.Imm(asm.R2, 17, "exit"))
	if m.VXLANPort != 0 {
		add(be16(asm.R3, 22, "")...)
		add(asm.JEq.Imm(asm.R3, int32(m.VXLANPort), "inner"))
	}
	add(be16(asm.R3, 20, "ports")...)
	add(asm.JEq.Imm(asm.R3, int32(m.Port), "match"))
	add(be16(asm.R3, 22, "")...)
	add(asm.JEq.Imm(asm.R3, int32(m.Port), "match"), asm.Ja.Label("exit"))
	add(be16(asm.R3, 24, "icmp")...)
	add(asm.JEq.Imm(asm.R3, int32(m.ICMPID), "match"), asm.Ja.Label("exit"))
	// Inside VXLAN: outer IP 20 + UDP 8 + VXLAN 8 + Ethernet 14 = 50.
	if m.VXLANPort != 0 {
		const in = 50
		add(asm.LoadMem(asm.R1, asm.RFP, pk(in), asm.Byte).WithSymbol("inner"), asm.JNE.Imm(asm.R1, 0x45, "exit"))
		add(asm.LoadMem(asm.R2, asm.RFP, pk(in+9), asm.Byte))
		add(asm.JEq.Imm(asm.R2, 1, "iicmp"), asm.JEq.Imm(asm.R2, 6, "iports"), asm.JNE.Imm(asm.R2, 17, "exit"))
		add(be16(asm.R3, in+20, "iports")...)
		add(asm.JEq.Imm(asm.R3, int32(m.Port), "match"))
		add(be16(asm.R3, in+22, "")...)
		add(asm.JEq.Imm(asm.R3, int32(m.Port), "match"), asm.Ja.Label("exit"))
		add(be16(asm.R3, in+24, "iicmp")...)
		add(asm.JEq.Imm(asm.R3, int32(m.ICMPID), "match"), asm.Ja.Label("exit"))
	}
	// A probe packet: fill in reason, location, skb, device and namespace.
	add(asm.LoadMem(asm.R1, asm.R6, 16, asm.DWord).WithSymbol("match"), asm.StoreMem(asm.RFP, evOff, asm.R1, asm.Word))
	add(asm.LoadMem(asm.R1, asm.R6, 8, asm.DWord), asm.StoreMem(asm.RFP, evOff+8, asm.R1, asm.DWord))
	add(asm.StoreMem(asm.RFP, evOff+24, asm.R7, asm.DWord))
	add(asm.StoreMem(asm.RFP, devOff, asm.R9, asm.DWord))
	add(read(devOff, 8, asm.R7, int32(l.skbDev))...)
	add(asm.LoadMem(asm.R8, asm.RFP, devOff, asm.DWord), asm.JEq.Imm(asm.R8, 0, "out"))
	add(read(evOff+4, 4, asm.R8, int32(l.devIfindex))...)
	add(asm.StoreMem(asm.RFP, ndnetOff, asm.R9, asm.DWord))
	add(read(ndnetOff, 8, asm.R8, int32(l.devNdNet))...)
	add(asm.LoadMem(asm.R8, asm.RFP, ndnetOff, asm.DWord), asm.JEq.Imm(asm.R8, 0, "out"))
	add(read(evOff+16, 4, asm.R8, int32(l.netNsInum))...)
	add(asm.LoadMapPtr(asm.R1, ringFD).WithSymbol("out"),
		asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, evOff),
		asm.Mov.Imm(asm.R3, eventSize), asm.Mov.Imm(asm.R4, 0), asm.FnRingbufOutput.Call())
	add(asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"), asm.Return())
	return p
}

// DropWatcher is an attached kfree_skb program and its ring buffer.
type DropWatcher struct {
	layout kernelLayout
	ring   *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
	reader *ringbuf.Reader

	mu     sync.Mutex
	events []DropEvent
	done   chan struct{}
}

// WatchDrops loads and attaches the program for m. Close detaches everything.
func WatchDrops(m Match) (*DropWatcher, error) {
	l, err := loadLayout()
	if err != nil {
		return nil, err
	}
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Name: "fjord_drops", Type: ebpf.RingBuf, MaxEntries: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("BPF ring buffer: %w", err)
	}
	w := &DropWatcher{layout: l, ring: ring, done: make(chan struct{})}
	w.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: ProgramName, Type: ebpf.RawTracepoint, License: "GPL",
		Instructions: program(l, m, ring.FD())})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("BPF program for skb:kfree_skb: %w", err)
	}
	w.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "kfree_skb", Program: w.prog})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("attach to skb:kfree_skb: %w", err)
	}
	w.reader, err = ringbuf.NewReader(ring)
	if err != nil {
		w.Close()
		return nil, err
	}
	go w.read()
	return w, nil
}

func (w *DropWatcher) read() {
	defer close(w.done)
	for {
		rec, err := w.reader.Read()
		if err != nil {
			return
		}
		if e, err := ParseDropEvent(rec.RawSample); err == nil {
			e.Time = time.Now()
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
		}
	}
}

// Events returns what was seen so far.
func (w *DropWatcher) Events() []DropEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]DropEvent(nil), w.events...)
}

// ReasonName names a drop reason ("" if unknown).
func (w *DropWatcher) ReasonName(r uint32) string { return w.layout.reasons[r] }

// Close detaches the program and frees the map.
func (w *DropWatcher) Close() error {
	var errs []error
	if w.reader != nil {
		errs = append(errs, w.reader.Close())
		<-w.done
	}
	if w.link != nil {
		errs = append(errs, w.link.Close())
	}
	if w.prog != nil {
		errs = append(errs, w.prog.Close())
	}
	if w.ring != nil {
		errs = append(errs, w.ring.Close())
	}
	return errors.Join(errs...)
}
