package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/fjord-net/fjord/internal/objects"
)

// list is kubectl's v1 List: what -o yaml|json prints for several objects.
type list struct {
	APIVersion string           `json:"apiVersion"`
	Items      []objects.Object `json:"items"`
	Kind       string           `json:"kind"`
	Metadata   listMeta         `json:"metadata"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion"`
}

// printObjects writes objects as yaml, json or name. single prints the one object bare
// (kubectl does so when exactly one NAME was asked for); otherwise a List is printed,
// carrying the store revision it was read at.
func printObjects(w io.Writer, format string, objs []objects.Object, single bool, revision int64) error {
	if format == "name" {
		for _, o := range objs {
			fmt.Fprintln(w, objectName(o))
		}
		return nil
	}
	var v any = objs
	if single && len(objs) == 1 {
		v = objs[0]
	} else {
		items := objs
		if items == nil {
			items = []objects.Object{}
		}
		rv := ""
		if revision > 0 {
			rv = fmt.Sprint(revision)
		}
		v = list{APIVersion: "v1", Kind: "List", Items: items, Metadata: listMeta{ResourceVersion: rv}}
	}
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q", format)
}

// objectName is "kind/name" as apply prints it ("pod/web").
func objectName(o objects.Object) string {
	return lowerKind(o) + "/" + o.GetName()
}

func lowerKind(o objects.Object) string {
	if k, err := objects.KindOf(objects.Kinds(), o); err == nil {
		return strings.ToLower(k.Name)
	}
	return strings.ToLower(o.GetObjectKind().GroupVersionKind().Kind)
}
