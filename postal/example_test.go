package postal_test

import (
	"fmt"

	"github.com/mssdispatch/mssdispatch/postal"
)

func ExampleAddressBlock() {
	lines, err := postal.AddressBlock("Dr Claire DUPONT-DEMO", postal.PostalAddress{
		Lines:      []string{"Résidence « Les Œillets », bât. B", "12, avenue de l'Église"},
		PostalCode: "33076",
		City:       "Bordeaux Cedex",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// Dr Claire DUPONT-DEMO
	// RESIDENCE LES OEILLETS BAT B
	// 12 AVENUE DE L EGLISE
	// 33076 BORDEAUX CEDEX
}
