package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/fjord-net/fjord/internal/objects"
)

// tableOptions say how to render a table; everything that varies is passed in, so the
// output is a pure function of its inputs.
type tableOptions struct {
	wide          bool
	withNamespace bool            // -A: a NAMESPACE column first
	now           time.Time       // for AGE
	liveNodes     map[string]bool // nodes whose kube-node-lease Lease exists
}

// column is one table column: values of wide columns appear with -o wide only.
type column struct {
	header string
	wide   bool
	value  func(objects.Object) string
}

// printTable writes objects of one kind as kubectl does: a header line and one aligned
// line per object, NAMESPACE first with -A, AGE after the kind's columns and the wide
// columns last.
func printTable(w io.Writer, k objects.Kind, objs []objects.Object, opt tableOptions) error {
	cols := []column{{header: "NAME", value: func(o objects.Object) string { return o.GetName() }}}
	if opt.withNamespace && k.Namespaced {
		cols = append([]column{{header: "NAMESPACE", value: func(o objects.Object) string { return o.GetNamespace() }}}, cols...)
	}
	kindCols := kindColumns(k, opt)
	for _, c := range kindCols {
		if !c.wide {
			cols = append(cols, c)
		}
	}
	cols = append(cols, column{header: "AGE", value: func(o objects.Object) string { return age(o, opt.now) }})
	if opt.wide {
		for _, c := range kindCols {
			if c.wide {
				cols = append(cols, c)
			}
		}
	}
	// kubectl's tabwriter settings.
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, o := range objs {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = c.value(o)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// age renders the time since creation as kubectl does (5s, 3m, 2h, 4d).
func age(o metav1.Object, now time.Time) string {
	ts := o.GetCreationTimestamp()
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(ts.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func kindColumns(k objects.Kind, opt tableOptions) []column {
	switch k.Name {
	case "Node":
		return nodeColumns(opt)
	case "Pod":
		return podColumns()
	case "Service":
		return serviceColumns()
	case "EndpointSlice":
		return endpointSliceColumns()
	case "Ingress":
		return ingressColumns()
	case "ConfigMap":
		return []column{{header: "DATA", value: func(o objects.Object) string {
			cm := o.(*corev1.ConfigMap)
			return strconv.Itoa(len(cm.Data) + len(cm.BinaryData))
		}}}
	case "Secret":
		return []column{
			{header: "TYPE", value: func(o objects.Object) string { return string(o.(*corev1.Secret).Type) }},
			{header: "DATA", value: func(o objects.Object) string { return strconv.Itoa(len(o.(*corev1.Secret).Data)) }},
		}
	case "IngressClass":
		return []column{{header: "CONTROLLER", value: func(o objects.Object) string { return o.(*networkingv1.IngressClass).Spec.Controller }}}
	case "BGPPeer", "BGPConfiguration":
		return bgpColumns(k.Name)
	case "Lease":
		return []column{{header: "HOLDER", value: func(o objects.Object) string {
			if h := o.(*coordinationv1.Lease).Spec.HolderIdentity; h != nil {
				return orNone(*h)
			}
			return "<none>"
		}}}
	}
	return nil
}

func nodeColumns(opt tableOptions) []column {
	annotation := func(key string) func(objects.Object) string {
		return func(o objects.Object) string { return orNone(o.GetAnnotations()[key]) }
	}
	return []column{
		{header: "STATUS", value: func(o objects.Object) string {
			status := "NotReady"
			if opt.liveNodes[o.GetName()] {
				status = "Ready"
			}
			// A node whose data plane cannot be programmed says so (kubectl shows
			// SchedulingDisabled the same way).
			for _, c := range o.(*corev1.Node).Status.Conditions {
				if c.Type == "FjordServiceProxyReady" && c.Status == corev1.ConditionFalse {
					status += ",ServiceProxyFailing"
				}
			}
			return status
		}},
		{header: "POD-CIDR", value: func(o objects.Object) string { return orNone(o.(*corev1.Node).Spec.PodCIDR) }},
		{header: "INTERNAL-IP", value: func(o objects.Object) string {
			for _, a := range o.(*corev1.Node).Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					return a.Address
				}
			}
			return "<none>"
		}},
		{header: "MODE", wide: true, value: annotation(objects.AnnotationBackend)},
		{header: "VTEP-MAC", wide: true, value: annotation(objects.AnnotationVTEPMAC)},
	}
}

func podColumns() []column {
	return []column{
		{header: "STATUS", value: func(o objects.Object) string {
			// The apiserver sets Pending on create; fjord's store does not, so an empty
			// phase means the same thing.
			if p := o.(*corev1.Pod).Status.Phase; p != "" {
				return string(p)
			}
			return string(corev1.PodPending)
		}},
		{header: "IP", value: func(o objects.Object) string { return orNone(o.(*corev1.Pod).Status.PodIP) }},
		{header: "NODE", value: func(o objects.Object) string { return orNone(o.(*corev1.Pod).Spec.NodeName) }},
		{header: "LABELS", wide: true, value: func(o objects.Object) string { return formatMap(o.GetLabels()) }},
	}
}

func serviceColumns() []column {
	return []column{
		{header: "TYPE", value: func(o objects.Object) string { return string(o.(*corev1.Service).Spec.Type) }},
		{header: "CLUSTER-IP", value: func(o objects.Object) string { return orNone(o.(*corev1.Service).Spec.ClusterIP) }},
		{header: "PORTS", value: func(o objects.Object) string {
			var ps []string
			for _, p := range o.(*corev1.Service).Spec.Ports {
				if p.NodePort != 0 {
					ps = append(ps, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol))
				} else {
					ps = append(ps, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
				}
			}
			return orNone(strings.Join(ps, ","))
		}},
		{header: "EXTERNAL-IP", wide: true, value: func(o objects.Object) string {
			s := o.(*corev1.Service)
			if s.Spec.Type == corev1.ServiceTypeExternalName {
				return s.Spec.ExternalName
			}
			return orNone(strings.Join(s.Spec.ExternalIPs, ","))
		}},
		{header: "SELECTOR", wide: true, value: func(o objects.Object) string { return formatMap(o.(*corev1.Service).Spec.Selector) }},
	}
}

func endpointSliceColumns() []column {
	return []column{
		{header: "ADDRESSTYPE", value: func(o objects.Object) string { return string(o.(*discoveryv1.EndpointSlice).AddressType) }},
		{header: "PORTS", value: func(o objects.Object) string {
			var ps []string
			for _, p := range o.(*discoveryv1.EndpointSlice).Ports {
				if p.Port != nil {
					ps = append(ps, strconv.Itoa(int(*p.Port)))
				}
			}
			if len(ps) == 0 {
				return "<unset>"
			}
			return strings.Join(ps, ",")
		}},
		{header: "ENDPOINTS", value: func(o objects.Object) string {
			var addrs []string
			for _, ep := range o.(*discoveryv1.EndpointSlice).Endpoints {
				addrs = append(addrs, ep.Addresses...)
			}
			return truncatedList(addrs, 3)
		}},
	}
}

func ingressColumns() []column {
	return []column{
		{header: "CLASS", value: func(o objects.Object) string {
			if c := o.(*networkingv1.Ingress).Spec.IngressClassName; c != nil {
				return *c
			}
			return "<none>"
		}},
		{header: "HOSTS", value: func(o objects.Object) string {
			var hosts []string
			for _, r := range o.(*networkingv1.Ingress).Spec.Rules {
				if r.Host == "" {
					hosts = append(hosts, "*")
				} else {
					hosts = append(hosts, r.Host)
				}
			}
			if len(hosts) == 0 {
				return "*"
			}
			return truncatedList(hosts, 4)
		}},
		{header: "PORTS", value: func(o objects.Object) string {
			if len(o.(*networkingv1.Ingress).Spec.TLS) > 0 {
				return "80, 443"
			}
			return "80"
		}},
	}
}

// truncatedList shows the first n items and how many more there are, like kubectl.
func truncatedList(items []string, n int) string {
	switch {
	case len(items) == 0:
		return "<none>"
	case len(items) > n:
		return fmt.Sprintf("%s + %d more...", strings.Join(items[:n], ","), len(items)-n)
	}
	return strings.Join(items, ",")
}

// formatMap renders labels or a selector as sorted k=v pairs.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return orNone(strings.Join(keys, ","))
}
