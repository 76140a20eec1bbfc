package paper_test

import (
	"fmt"

	"github.com/mssdispatch/mssdispatch/paper"
)

func ExampleAddressBlock() {
	lines, err := paper.AddressBlock("Dr Claire DUPONT-DEMO", paper.PostalAddress{
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
