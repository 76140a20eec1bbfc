// Package postal is the French postal address: how the national
// directory publishes it (PostalAddress), and how it is written on an
// envelope under the NF Z 10-011 norm (AddressBlock, Envelope). It has no
// dependency beyond text handling, so that the directory, the domain and
// the letters share it.
package postal
