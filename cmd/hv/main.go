// Command hv is the hypervisor: the program the boot platform runs as its Go
// main once the runtime is up.
package main

import (
	_ "hv/boot"
)

func main() {
	println("hv: main")
}
