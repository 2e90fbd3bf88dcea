package cni

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/validation"
)

// validateIDs checks CNI_CONTAINERID and CNI_IFNAME (code 4; skel checks them too, but
// the commands are also called directly).
func validateIDs(args *skel.CmdArgs) *types.Error {
	if args.ContainerID == "" {
		return errorf(types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID: missing")
	}
	if err := utils.ValidateContainerID(args.ContainerID); err != nil {
		return errorf(types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID: %q: %s", args.ContainerID, err.Msg)
	}
	if err := utils.ValidateInterfaceName(args.IfName); err != nil {
		return errorf(types.ErrInvalidEnvironmentVariables, "CNI_IFNAME: %q: %s", args.IfName, err.Msg)
	}
	return nil
}

// openNetns opens CNI_NETNS after checking it is a network namespace (a file on nsfs
// whose namespace type is "net") other than the plugin's own. Errors are code 4.
func openNetns(path string) (netns.NsHandle, *types.Error) {
	if path == "" {
		return netns.None(), errorf(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: missing")
	}
	h, err := netns.GetFromPath(path)
	if errors.Is(err, os.ErrNotExist) {
		return netns.None(), errorf(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: %s does not exist", path)
	}
	if err != nil {
		return netns.None(), errorf(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: %v", err)
	}
	if err := isNetNS(int(h)); err != nil {
		h.Close()
		return netns.None(), errorf(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: %s is not a network namespace: %v", path, err)
	}
	if self, err := netns.Get(); err == nil {
		same := self.Equal(h)
		self.Close()
		if same {
			h.Close()
			return netns.None(), errorf(types.ErrInvalidEnvironmentVariables, "CNI_NETNS: %s is the plugin's own network namespace", path)
		}
	}
	return h, nil
}

// isNetNS checks that fd is on nsfs and refers to a network namespace.
func isNetNS(fd int) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return err
	}
	if st.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("not on nsfs (filesystem magic %#x)", st.Type)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return err
	}
	if typ != unix.CLONE_NEWNET {
		return fmt.Errorf("namespace type %#x, not net", typ)
	}
	return nil
}

// podOf reads the pod a runtime names in CNI_ARGS (containerd and CRI-O pass
// K8S_POD_NAMESPACE and K8S_POD_NAME) as "namespace/name", "" when it names none.
// Other keys are ignored; a malformed pair or an invalid name is an error (code 4).
func podOf(cniArgs string) (string, *types.Error) {
	var ns, name string
	for _, kv := range strings.Split(cniArgs, ";") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", errorf(types.ErrInvalidEnvironmentVariables, "CNI_ARGS: %q is not KEY=VALUE", kv)
		}
		switch k {
		case "K8S_POD_NAMESPACE":
			ns = v
		case "K8S_POD_NAME":
			name = v
		}
	}
	if ns == "" && name == "" {
		return "", nil
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return "", errorf(types.ErrInvalidEnvironmentVariables, "CNI_ARGS K8S_POD_NAMESPACE %q: %s", ns, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", errorf(types.ErrInvalidEnvironmentVariables, "CNI_ARGS K8S_POD_NAME %q: %s", name, strings.Join(msgs, "; "))
	}
	return ns + "/" + name, nil
}
