package main

import "testing"

func TestImageDependency(t *testing.T) {
	const meta = `linux-image-cloud-amd64
  Depends: linux-image-6.1.0-56-cloud-amd64
`
	const versioned = `linux-image-6.1.0-56-cloud-amd64
  Depends: kmod
  Depends: linux-base
 |Depends: initramfs-tools
  Depends: <linux-initramfs-tool>
    dracut
  Recommends: firmware-linux-free
`
	tests := []struct {
		name, out, pkg string
		want           string
		ok             bool
	}{
		{"metapackage", meta, "linux-image-cloud-amd64", "linux-image-6.1.0-56-cloud-amd64", true},
		{"versioned package", versioned, "linux-image-6.1.0-56-cloud-amd64", "linux-image-6.1.0-56-cloud-amd64", true},
		{"unknown package", "", "linux-image-cloud-amd64", "linux-image-cloud-amd64", false},
		{"metapackage without kernel", "linux-image-cloud-amd64\n  Depends: kmod\n", "linux-image-cloud-amd64", "linux-image-cloud-amd64", false},
		{"not a kernel", "busybox\n  Depends: libc6\n", "busybox", "busybox", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := imageDependency(tt.out, tt.pkg)
			if got != tt.want || ok != tt.ok {
				t.Errorf("imageDependency = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
