// vcsim for the tests: VMware's vSphere simulator (govmomi's simulator package) on loopback.
//
// Usage: vcsim -model vpx|esx -listen 127.0.0.1:PORT -user U -password P
// Prints the SDK URL on its first line, then serves until SIGTERM or SIGINT. With -model vpx
// the first host of cluster DC0_C0 is made larger (8 cores, 16 GiB) than the others (2 cores,
// 4 GiB), so that placement and the contract suite see hosts of two sizes.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	model := flag.String("model", "vpx", "vpx (vCenter) or esx (a standalone ESXi host)")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	user := flag.String("user", "user", "user name")
	password := flag.String("password", "pass", "password")
	flag.Parse()

	var m *simulator.Model
	switch *model {
	case "vpx":
		m = simulator.VPX()
	case "esx":
		m = simulator.ESX()
	default:
		log.Fatalf("unknown model %q", *model)
	}
	defer m.Remove()
	if err := m.Create(); err != nil {
		log.Fatal(err)
	}
	if *model == "vpx" {
		for _, e := range simulator.Map.All("HostSystem") {
			host := e.(*simulator.HostSystem)
			if host.Name != "DC0_C0_H0" {
				continue
			}
			host.Summary.Hardware.NumCpuCores = 8
			host.Summary.Hardware.NumCpuThreads = 8
			host.Summary.Hardware.MemorySize = 16 << 30
			host.Hardware.CpuInfo.NumCpuCores = 8
			host.Hardware.CpuInfo.NumCpuThreads = 8
			host.Hardware.MemorySize = 16 << 30
		}
	}
	m.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	m.Service.TLS = new(tls.Config)
	s := m.Service.NewServer()
	defer s.Close()
	fmt.Println(s.URL)
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
