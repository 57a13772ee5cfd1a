/*
 * sorted.h - binary search in a sorted array of pointers (topic tables by name, the metadata
 * image by name and by id).
 */
#ifndef RN_SORTED_H
#define RN_SORTED_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The index of the element equal to key (*found true), or where key would be inserted to keep
 * v sorted (*found false). cmp(element, key) returns <0, 0, >0 as element sorts before, equal
 * to, or after key.
 */
size_t rn_sorted_pos(void *const *v, size_t n, const void *key,
                     int (*cmp)(const void *element, const void *key), bool *found);

#endif
