package objects

import (
	"errors"
	"strings"
	"testing"
)

// decodeOne decodes a single YAML object, failing the test on decoding errors so that
// validation cases test validation only.
func decodeOne(t *testing.T, in string) Object {
	t.Helper()
	objs, err := Decode(strings.NewReader(in), "case.yaml")
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(objs) != 1 {
		t.Fatalf("decoded %d objects", len(objs))
	}
	return objs[0]
}

const (
	svcHead = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
	podHead = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
	ingHead = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: ing}\nspec:\n"
	esHead  = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1}\n"
	okCtr   = "spec:\n  containers: [{name: c, image: nginx}]\n"
)

func TestValidateGood(t *testing.T) {
	for name, in := range map[string]string{
		"pod":               podHead + "spec:\n  nodeName: node-1\n  containers:\n  - name: web\n    image: nginx:1.27\n    ports: [{name: http, containerPort: 80}, {containerPort: 53, protocol: UDP}]\nstatus: {phase: Running, podIP: 10.244.1.5, podIPs: [{ip: 10.244.1.5}, {ip: 'fd00::5'}]}\n",
		"node":              "apiVersion: v1\nkind: Node\nmetadata: {name: node-1, annotations: {fjord.dev/backend: vxlan, fjord.dev/vtep-mac: '02:42:ac:11:00:02'}}\nspec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24, 'fd00:1::/64']}\nstatus:\n  addresses: [{type: InternalIP, address: 198.18.0.2}, {type: Hostname, address: node-1}]\n",
		"service":           svcHead + "  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}\n  - {name: https, port: 443, targetPort: 8443}\n",
		"headless no ports": svcHead + "  clusterIP: None\n  selector: {app: web}\n",
		"nodeport":          svcHead + "  type: NodePort\n  externalTrafficPolicy: Local\n  ports: [{port: 80, nodePort: 30080}]\n",
		"lb with session":   svcHead + "  type: LoadBalancer\n  clusterIP: 10.96.0.10\n  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  ports: [{port: 80, protocol: SCTP}]\n",
		"externalname":      svcHead + "  type: ExternalName\n  externalName: db.example.com\n",
		"externalIPs":       svcHead + "  externalIPs: [198.18.0.100]\n  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n",
		"endpointslice":     esHead + "addressType: IPv4\nendpoints:\n- addresses: [10.244.1.5]\n  nodeName: node-1\n  conditions: {ready: true}\nports: [{name: http, port: 8080}]\n",
		"endpointslice v6":  esHead + "addressType: IPv6\nendpoints: [{addresses: ['fd00::5']}]\n",
		"ingress":           ingHead + "  ingressClassName: fjord\n  tls: [{hosts: ['*.example.com'], secretName: wildcard-tls}]\n  rules:\n  - host: '*.example.com'\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n      - {path: /api, pathType: Exact, backend: {service: {name: api, port: {name: http}}}}\n  - http:\n      paths: [{pathType: ImplementationSpecific, backend: {resource: {kind: Bucket, name: b}}}]\n",
		"ingressclass":      "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: fjord}\nspec: {controller: fjord.dev/ingress, parameters: {kind: ConfigMap, name: c, scope: Namespace, namespace: ingress-nginx}}\n",
		"secret tls":        "apiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\nstringData: {tls.crt: x, tls.key: yy}\n",
		"lease":             "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: node-1, namespace: kube-node-lease}\nspec: {holderIdentity: node-1, leaseDurationSeconds: 40}\n",
		"configmap":         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a.b_c-d: x}\nbinaryData: {bin: AAEC}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := Validate(decodeOne(t, in)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateBad(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // each must be a line (or part of one) of the error
	}{
		// metadata
		{"bad name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Web_1}\n", []string{"ConfigMap default/Web_1: metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain"}},
		{"missing name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", []string{"ConfigMap default/(no name): metadata.name: Required value"}},
		{"bad namespace", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: My.NS}\n", []string{"metadata.namespace: Invalid value: \"My.NS\""}},
		{"bad label", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {'-x': yy, ok: 'bad value!'}}\n", []string{"metadata.labels: Invalid value: \"-x\"", "metadata.labels: Invalid value: \"bad value!\""}},
		{"bad annotation", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {'a b': c}}\n", []string{"metadata.annotations: Invalid value: \"a b\""}},
		{"service name must be DNS-1035", svcHead[:len("apiVersion: v1\nkind: Service\nmetadata: {name: ")] + "1web}\nspec: {ports: [{port: 80}]}\n", []string{"Service default/1web: metadata.name: Invalid value: \"1web\": a DNS-1035 label"}},

		// pod
		{"pod without containers", podHead + "spec: {}\n", []string{"Pod default/web: spec.containers: Required value"}},
		{"container name and image", podHead + "spec:\n  containers: [{name: Web}, {name: ok, image: ' x'}]\n", []string{"spec.containers[0].name: Invalid value: \"Web\"", "spec.containers[0].image: Required value", "spec.containers[1].image: Invalid value: \" x\": must not have leading or trailing whitespace"}},
		{"duplicate container", podHead + "spec:\n  containers: [{name: a, image: x}, {name: a, image: x}]\n", []string{"spec.containers[1].name: Duplicate value: \"a\""}},
		{"container ports", podHead + "spec:\n  containers:\n  - name: c\n    image: x\n    ports: [{containerPort: 70000}, {containerPort: 80, protocol: ICMP}, {name: http, containerPort: 1}, {name: http, containerPort: 2}, {}]\n",
			[]string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive", "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"", "spec.containers[0].ports[3].name: Duplicate value: \"http\"", "spec.containers[0].ports[4].containerPort: Required value"}},
		{"pod nodeName", podHead + okCtr + "  nodeName: Node_1\n", []string{"spec.nodeName: Invalid value: \"Node_1\""}},
		{"pod status IPs", podHead + okCtr + "status: {phase: Sleeping, podIP: 10.0.0.300, podIPs: [{ip: 10.0.0.1}], hostIP: 010.0.0.1}\n", []string{"status.phase: Unsupported value: \"Sleeping\"", "status.podIP: Invalid value: \"10.0.0.300\": must be a valid IP address", "status.podIPs[0].ip: Invalid value: \"10.0.0.1\": must match `status.podIP`", "status.hostIP: Invalid value: \"010.0.0.1\": must not have leading 0s"}},

		// node
		{"node cidrs and addresses", "apiVersion: v1\nkind: Node\nmetadata: {name: n1, annotations: {fjord.dev/vtep-mac: nope}}\nspec: {podCIDR: 10.244.1.0/33, podCIDRs: [10.244.1.0/24, 10.245.0.0/24]}\nstatus:\n  addresses: [{type: InternalIP, address: node-1}, {type: Weird, address: x}, {type: ExternalIP}]\n",
			[]string{"Node n1: metadata.annotations[fjord.dev/vtep-mac]: Invalid value: \"nope\"", "spec.podCIDR: Invalid value: \"10.244.1.0/33\"", "spec.podCIDRs: Invalid value", "may specify no more than one CIDR for each IP family", "status.addresses[0].address: Invalid value: \"node-1\": must be a valid IP address", "status.addresses[1].type: Unsupported value: \"Weird\"", "status.addresses[2].address: Required value"}},

		// service
		{"service port out of range", svcHead + "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 70000}\n", []string{"Service default/web: spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535"}},
		{"service type", svcHead + "  type: Magic\n  ports: [{port: 80}]\n", []string{"spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\""}},
		{"service without ports", svcHead + "  selector: {app: web}\n", []string{"spec.ports: Required value"}},
		{"service clusterIP", svcHead + "  clusterIP: 10.96.0.1000\n  ports: [{port: 80}]\n", []string{"spec.clusterIP: Invalid value: \"10.96.0.1000\""}},
		{"headless nodeport", svcHead + "  type: NodePort\n  clusterIP: None\n  ports: [{port: 80}]\n", []string{"spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for NodePort services"}},
		{"port names", svcHead + "  ports: [{port: 80}, {name: HTTP, port: 81}, {name: x, port: 82}, {name: x, port: 83}]\n", []string{"spec.ports[0].name: Required value", "spec.ports[1].name: Invalid value: \"HTTP\"", "spec.ports[3].name: Duplicate value: \"x\""}},
		{"duplicate port", svcHead + "  ports: [{name: a, port: 80}, {name: b, port: 80}]\n", []string{"spec.ports[1]: Duplicate value: \"80/TCP\""}},
		{"protocol", svcHead + "  ports: [{port: 80, protocol: tcp}]\n", []string{"spec.ports[0].protocol: Unsupported value: \"tcp\""}},
		{"targetPort", svcHead + "  ports: [{name: a, port: 80, targetPort: a--b}, {name: b, port: 81, targetPort: 99999}, {name: c, port: 82, targetPort: too-long-port-name}]\n", []string{"spec.ports[0].targetPort: Invalid value: \"a--b\"", "spec.ports[1].targetPort: Invalid value: 99999", "spec.ports[2].targetPort: Invalid value: \"too-long-port-name\": must be no more than 15 characters"}},
		{"nodePort on ClusterIP", svcHead + "  ports: [{port: 80, nodePort: 30080}]\n", []string{"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"}},
		{"nodePort range", svcHead + "  type: NodePort\n  ports: [{port: 80, nodePort: 8080}]\n", []string{"spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"}},
		{"selector", svcHead + "  selector: {'a/b/c': x}\n  ports: [{port: 80}]\n", []string{"spec.selector: Invalid value: \"a/b/c\""}},
		{"session affinity", svcHead + "  sessionAffinity: Sticky\n  ports: [{port: 80}]\n", []string{"spec.sessionAffinity: Unsupported value: \"Sticky\""}},
		{"affinity timeout", svcHead + "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\n  ports: [{port: 80}]\n", []string{"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be between 1 and 86400, inclusive"}},
		{"affinity config with None", svcHead + "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 10}}\n  ports: [{port: 80}]\n", []string{"spec.sessionAffinityConfig: Forbidden: must not be set when `sessionAffinity` is None"}},
		{"traffic policies", svcHead + "  type: NodePort\n  externalTrafficPolicy: Nearest\n  internalTrafficPolicy: Node\n  ports: [{port: 80}]\n", []string{"spec.externalTrafficPolicy: Unsupported value: \"Nearest\"", "spec.internalTrafficPolicy: Unsupported value: \"Node\""}},
		{"externalTrafficPolicy on internal service", svcHead + "  externalTrafficPolicy: Local\n  ports: [{port: 80}]\n", []string{"spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"}},
		{"externalIPs", svcHead + "  externalIPs: [1.2.3, 127.0.0.1]\n  ports: [{port: 80}]\n", []string{"spec.externalIPs[0]: Invalid value: \"1.2.3\"", "spec.externalIPs[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range"}},
		{"externalName", svcHead + "  type: ExternalName\n  clusterIP: 10.0.0.1\n", []string{"spec.clusterIP: Forbidden: may not be set for ExternalName services", "spec.externalName: Required value"}},

		// endpointslice
		{"addressType", esHead + "addressType: IP\n", []string{"EndpointSlice default/web-1: addressType: Unsupported value: \"IP\""}},
		{"missing addressType", esHead + "endpoints: []\n", []string{"addressType: Required value"}},
		{"endpoint addresses", esHead + "addressType: IPv4\nendpoints:\n- addresses: ['fd00::1', 10.0.0.1]\n- addresses: []\n- addresses: [nope]\n  nodeName: NN\n", []string{"endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be an IPv4 address", "endpoints[1].addresses: Required value: must contain at least 1 address", "endpoints[2].addresses[0]: Invalid value: \"nope\"", "endpoints[2].nodeName: Invalid value: \"NN\""}},
		{"endpoint fqdn", esHead + "addressType: FQDN\nendpoints: [{addresses: [Not_A_Name]}]\n", []string{"endpoints[0].addresses[0]: Invalid value: \"Not_A_Name\""}},
		{"endpoint ports", esHead + "addressType: IPv6\nports: [{name: HTTP, port: 0}, {name: a, protocol: X}, {name: a}]\n", []string{"ports[0].name: Invalid value: \"HTTP\"", "ports[0].port: Invalid value: 0", "ports[1].protocol: Unsupported value: \"X\"", "ports[2].name: Duplicate value: \"a\""}},

		// ingress
		{"ingress empty", ingHead + "  ingressClassName: Bad_Class\n", []string{"Ingress default/ing: spec: Required value: either `defaultBackend` or `rules` must be specified", "spec.ingressClassName: Invalid value: \"Bad_Class\""}},
		{"ingress hosts", ingHead + "  rules: [{host: 10.0.0.1}, {host: 'foo.*.com'}, {host: '*.*.com'}, {host: Example.com}]\n", []string{"spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address", "spec.rules[1].host: Invalid value: \"foo.*.com\"", "spec.rules[2].host: Invalid value: \"*.*.com\"", "spec.rules[3].host: Invalid value: \"Example.com\""}},
		{"ingress paths", ingHead + "  rules:\n  - http:\n      paths:\n      - {path: api, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}\n      - {path: /a//b, pathType: Exact, backend: {service: {name: a, port: {number: 80}}}}\n      - {path: /, backend: {service: {name: a, port: {number: 80}}}}\n      - {path: /, pathType: Regex, backend: {service: {name: a, port: {number: 80}}}}\n      - {path: /x/.., pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}\n  - http: {paths: []}\n",
			[]string{"spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path", "spec.rules[0].http.paths[1].path: Invalid value: \"/a//b\": must not contain '//'", "spec.rules[0].http.paths[2].pathType: Required value: pathType must be specified", "spec.rules[0].http.paths[3].pathType: Unsupported value: \"Regex\"", "spec.rules[0].http.paths[4].path: Invalid value: \"/x/..\": cannot end with '/..'", "spec.rules[1].http.paths: Required value"}},
		{"ingress backends", ingHead + "  rules:\n  - http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {}}\n      - {path: /a, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}, resource: {kind: K, name: nn}}}\n      - {path: /b, pathType: Prefix, backend: {service: {name: A.b, port: {}}}}\n      - {path: /c, pathType: Prefix, backend: {service: {name: a, port: {number: 80, name: http}}}}\n      - {path: /d, pathType: Prefix, backend: {service: {name: a, port: {number: 65536}}}}\n      - {path: /e, pathType: Prefix, backend: {service: {name: a, port: {name: Http_}}}}\n",
			[]string{"paths[0].backend: Required value: resource or service backend is required", "paths[1].backend: Invalid value: cannot set both resource and service backends", "paths[2].backend.service.name: Invalid value: \"A.b\"", "paths[2].backend.service.port: Required value: port name or number is required", "paths[3].backend.service.port: Invalid value: cannot set both port name & port number", "paths[4].backend.service.port.number: Invalid value: 65536", "paths[5].backend.service.port.name: Invalid value: \"Http_\""}},
		{"ingress default backend and tls", ingHead + "  defaultBackend: {service: {name: web}}\n  tls: [{hosts: [a..b], secretName: Bad_Secret}]\n", []string{"spec.defaultBackend.service.port: Required value", "spec.tls[0].hosts[0]: Invalid value: \"a..b\"", "spec.tls[0].secretName: Invalid value: \"Bad_Secret\""}},
		{"ingressclass", "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c}\nspec: {controller: nginx, parameters: {kind: '', name: p, scope: Namespace}}\n", []string{"IngressClass c: spec.controller: Invalid value: \"nginx\"", "spec.parameters.kind: Required value", "spec.parameters.namespace: Required value"}},
		{"ingressclass without controller", "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c}\n", []string{"spec.controller: Required value"}},

		// configmap, secret, lease
		{"configmap keys", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {'a/b': x, dup: yy}\nbinaryData: {dup: AA==}\n", []string{"ConfigMap default/c: data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters", "binaryData[dup]: Invalid value: \"dup\": duplicate of key present in data"}},
		{"configmap too big", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {big: " + strings.Repeat("x", MaxDataBytes) + "}\n", []string{"data: Too long: may not be more than 1048576 bytes"}},
		{"tls secret", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}\n", []string{"Secret default/s: data[tls.key]: Required value"}},
		{"secret keys", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {'../x': yy}\n", []string{"data[../x]: Invalid value: \"../x\""}},
		{"lease", "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\nspec: {leaseDurationSeconds: 0, leaseTransitions: -1}\n", []string{"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0", "spec.leaseTransitions: Invalid value: -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(decodeOne(t, tt.in))
			if err == nil {
				t.Fatal("expected a validation error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *ValidationError", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, ve.Object+": ") {
					t.Errorf("line does not name the object: %q", line)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}
