package controller

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fjord-net/fjord/internal/ingress/proxy"
	"github.com/fjord-net/fjord/internal/ingress/route"
)

func metav1TypeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func objectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}

func proxyKey(ns, svc, port string) proxy.UpstreamKey {
	return proxy.UpstreamKey{Namespace: ns, Service: svc, Port: route.Port{Name: port}}
}
