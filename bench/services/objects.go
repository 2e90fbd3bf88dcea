package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// The benchmark's services: service i is "bs-%05d" with cluster IP serviceIP(i), port
// 80 (TCP, named http) to target port 8080, no selector, and an EndpointSlice of the
// same name with the three echo backends. The same JSON documents are written to
// fjord's store and to kube-apiserver.
const (
	servicePort  = 80
	backendPort  = 8080
	sliceManager = "bench-services"
	firstIPIndex = 1024 // 10.96.4.0: clear of 10.96.0.1, which kube-apiserver gives "kubernetes"
)

var serviceBase = netip.MustParseAddr("10.96.0.0")

func serviceName(i int) string { return fmt.Sprintf("bs-%05d", i) }

func serviceIP(i int) netip.Addr {
	b := serviceBase.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(firstIPIndex + i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func serviceAddr(i int) netip.AddrPort { return netip.AddrPortFrom(serviceIP(i), servicePort) }

type jsonObj = map[string]any

func serviceJSON(i int) jsonObj {
	ip := serviceIP(i).String()
	return jsonObj{
		"apiVersion": "v1", "kind": "Service",
		"metadata": jsonObj{"name": serviceName(i), "namespace": "default", "labels": jsonObj{"app": "bench-services"}},
		"spec": jsonObj{
			"type": "ClusterIP", "clusterIP": ip, "clusterIPs": []string{ip},
			"ports": []jsonObj{{"name": "http", "port": servicePort, "targetPort": backendPort, "protocol": "TCP"}},
		},
	}
}

func sliceEndpoints(backends []netip.Addr) []jsonObj {
	var eps []jsonObj
	for _, b := range backends {
		eps = append(eps, jsonObj{"addresses": []string{b.String()}, "conditions": jsonObj{"ready": true}})
	}
	return eps
}

func sliceJSON(i int, backends []netip.Addr) jsonObj {
	return jsonObj{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
		"metadata": jsonObj{"name": serviceName(i), "namespace": "default", "labels": jsonObj{
			"kubernetes.io/service-name":             serviceName(i),
			"endpointslice.kubernetes.io/managed-by": sliceManager,
		}},
		"addressType": "IPv4",
		"endpoints":   sliceEndpoints(backends),
		"ports":       []jsonObj{{"name": "http", "port": backendPort, "protocol": "TCP"}},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
