package lab

import "fmt"

// KubeDemoManifest is the Kubernetes lab's demo workload, applied with kubectl: a
// Deployment of echo pods spread one per node, a Service in front of them, and an
// Ingress with no class (fjord's IngressClass is the default) sending every request
// to it. The lab's runtime runs `fjord echo` for any image.
func KubeDemoManifest(replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: default
spec:
  replicas: %d
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels: {app: echo}
      containers:
      - name: echo
        image: fjord/echo
        ports:
        - {name: http, containerPort: 8080}
        - {name: tcp-echo, containerPort: 9000}
        - {name: udp-echo, containerPort: 9000, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: default
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: udp-echo, port: 9000, targetPort: udp-echo, protocol: UDP}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: echo
  namespace: default
spec:
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: echo
            port: {name: http}
`, replicas)
}

// kubeLabBindings binds the lab's fjord users to the least-privilege roles of
// deploy/fjord.yaml, as its ServiceAccounts are bound there.
const kubeLabBindings = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: fjord-agent-lab
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fjord-agent}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "` + LabAgentUser + `"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: fjord-ingress-lab
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fjord-ingress}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "` + LabIngressUser + `"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: fjord-ingress-lab
  namespace: fjord-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: fjord-ingress}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "` + LabIngressUser + `"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: fjord-ingress-config-lab
  namespace: ingress-nginx
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: fjord-ingress-config}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "` + LabIngressUser + `"}
`
