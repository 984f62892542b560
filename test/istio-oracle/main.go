// Command istio-oracle answers, with Istio's own code, the questions mesh-admission's rules
// claim to answer the way Istio does. The differential test (test/e2e/istio-differential.e2e.ts)
// compares its answers with `mesh-admission check`.
//
//	istio-oracle analyze     reads a JSON array of scenarios on stdin ({id, files}) and runs
//	                         Istio's analyzers for the rules the project mirrors over all the
//	                         objects of each scenario's files (Services, Namespaces and Pods
//	                         included); prints {"<id>": [{code, level, kind, namespace, name,
//	                         message}]}
//	istio-oracle protocols   reads a JSON array of Service ports on stdin ({port, name,
//	                         protocol, appProtocol?}) and prints, in order, the protocol
//	                         Istio's ConvertProtocol assigns to each
//	istio-oracle version     the istio.io/istio version it was built against
//
// Objects are loaded the way Istio's analyzer tests load them (runtime kinds kept), not the
// way `istioctl analyze --use-kube=false` does, which drops Services, Namespaces and Pods read
// from files and so leaves these analyzers nothing to look at.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"istio.io/istio/pkg/config/analysis"
	"istio.io/istio/pkg/config/analysis/analyzers/destinationrule"
	"istio.io/istio/pkg/config/analysis/analyzers/gateway"
	"istio.io/istio/pkg/config/analysis/analyzers/injection"
	"istio.io/istio/pkg/config/analysis/analyzers/schema"
	"istio.io/istio/pkg/config/analysis/analyzers/service"
	"istio.io/istio/pkg/config/analysis/analyzers/virtualservice"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	configkube "istio.io/istio/pkg/config/kube"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/log"
)

// The analyzers behind the project's rules: port names and protocols, namespace injection
// labels, gateway ports on the ingress Service, Gateways conflicting with each other,
// VirtualService destinations and gateways, and the Gateway / VirtualService validation the
// structural rules repeat; route subsets and DestinationRule hosts; mesh-bound VirtualServices
// sharing a host.
func mirroredAnalyzers() analysis.CombinedAnalyzer {
	return analysis.Combine("mesh-admission-mirrored",
		&service.PortNameAnalyzer{},
		&injection.Analyzer{},
		&gateway.IngressGatewayPortAnalyzer{},
		&gateway.ConflictingGatewayAnalyzer{},
		&virtualservice.DestinationHostAnalyzer{},
		&virtualservice.GatewayAnalyzer{},
		schema.CollectionValidationAnalyzer(collections.Gateway),
		schema.CollectionValidationAnalyzer(collections.VirtualService),
		&virtualservice.DestinationRuleAnalyzer{},
		&virtualservice.ConflictingMeshGatewayHostsAnalyzer{},
		&destinationrule.PodNotSelectedAnalyzer{},
	)
}

type finding struct {
	Code      string `json:"code"`
	Level     string `json:"level"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Message   string `json:"message"`
}

type scenario struct {
	ID    string   `json:"id"`
	Files []string `json:"files"`
}

func analyzeScenario(sc scenario) ([]finding, error) {
	readers := make([]local.ReaderSource, 0, len(sc.Files))
	for _, path := range sc.Files {
		content, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer content.Close()
		readers = append(readers, local.ReaderSource{Name: path, Reader: content})
	}
	// No namespace of its own (objects without one keep an empty namespace and no message is
	// filtered by namespace); istio-system is the control plane's namespace, as in Istio's tests.
	// Istio's default ingress gateway objects are not added: the differential test gives both
	// sides the same ingress gateway in a file, so that both see the same world.
	sa := local.NewSourceAnalyzer(mirroredAnalyzers(), "", "istio-system", nil)
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.ID, err)
	}
	result, err := sa.Analyze(make(chan struct{}))
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.ID, err)
	}
	findings := make([]finding, 0, len(result.Messages))
	for _, m := range result.Messages {
		findings = append(findings, toFinding(m))
	}
	return findings, nil
}

func toFinding(m diag.Message) finding {
	f := finding{
		Code:    m.Type.Code(),
		Level:   m.Type.Level().String(),
		Message: fmt.Sprintf(m.Type.Template(), m.Parameters...),
	}
	if m.Resource != nil {
		f.Namespace = m.Resource.Metadata.FullName.Namespace.String()
		f.Name = m.Resource.Metadata.FullName.Name.String()
		// The origin's friendly name is "<Kind> <namespace>/<name>" (or "<Kind> <name>").
		f.Kind, _, _ = strings.Cut(m.Resource.Origin.FriendlyName(), " ")
	}
	return f
}

func analyze() error {
	var scenarios []scenario
	if err := json.NewDecoder(os.Stdin).Decode(&scenarios); err != nil {
		return fmt.Errorf("reading the scenarios from stdin: %w", err)
	}
	out := make(map[string][]finding, len(scenarios))
	for _, sc := range scenarios {
		findings, err := analyzeScenario(sc)
		if err != nil {
			return err
		}
		out[sc.ID] = findings
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// quietLogs keeps stdout for the JSON answer: Istio's packages log their progress (caches
// synced, ...) there by default.
func quietLogs() error {
	options := log.DefaultOptions()
	options.OutputPaths = []string{"stderr"}
	if err := log.Configure(options); err != nil {
		return err
	}
	for _, scope := range log.Scopes() {
		scope.SetOutputLevel(log.WarnLevel)
	}
	return nil
}

type portRow struct {
	Port        int32   `json:"port"`
	Name        string  `json:"name"`
	Protocol    string  `json:"protocol"`
	AppProtocol *string `json:"appProtocol"`
}

func protocols() error {
	var rows []portRow
	if err := json.NewDecoder(os.Stdin).Decode(&rows); err != nil {
		return fmt.Errorf("reading the port table from stdin: %w", err)
	}
	answers := make([]string, len(rows))
	for i, row := range rows {
		answers[i] = string(configkube.ConvertProtocol(row.Port, row.Name, corev1.Protocol(row.Protocol), row.AppProtocol))
	}
	return json.NewEncoder(os.Stdout).Encode(answers)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: istio-oracle analyze < scenarios.json | istio-oracle protocols < ports.json | istio-oracle version")
		os.Exit(64)
	}
	err := quietLogs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "istio-oracle: configuring logs:", err)
		os.Exit(1)
	}
	switch os.Args[1] {
	case "analyze":
		err = analyze()
	case "protocols":
		err = protocols()
	case "version":
		// The build script checks an installed binary against the pinned version with this.
		fmt.Println(istioVersion)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "istio-oracle:", err)
		os.Exit(1)
	}
}
