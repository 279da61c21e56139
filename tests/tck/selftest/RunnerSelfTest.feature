# The runner's own check: scenarios named "fails:" state wrong
# expectations and must be reported as FAIL; "passes:" ones must PASS.
# A runner that passes everything (or nothing) cannot pass this.
Feature: RunnerSelfTest - wrong expectations are caught
  Scenario: [1] fails: int is not float
    Given an empty graph
    When executing query:
      """
      RETURN 1 AS x
      """
    Then the result should be, in any order:
      | x   |
      | 1.0 |
    And no side effects

  Scenario: [2] fails: unlisted side effects must be 0
    Given an empty graph
    When executing query:
      """
      CREATE (:A {p: 1})
      """
    Then the result should be empty
    And the side effects should be:
      | +nodes | 1 |

  Scenario: [3] passes: side effects diff
    Given an empty graph
    And having executed:
      """
      CREATE (:A {p: 1})-[:T {q: 2}]->(:B)
      """
    When executing query:
      """
      MATCH (a:A)-[r]->(b) SET a.p = 5 REMOVE b:B DELETE r
      """
    Then the result should be empty
    And the side effects should be:
      | +properties    | 1 |
      | -properties    | 2 |
      | -labels        | 1 |
      | -relationships | 1 |

  Scenario: [4] fails: wrong error type
    Given any graph
    When executing query:
      """
      RETURN 1 +
      """
    Then a TypeError should be raised at compile time: X

  Scenario: [5] fails: wrong column name
    Given any graph
    When executing query:
      """
      RETURN 1 AS x
      """
    Then the result should be, in any order:
      | y |
      | 1 |

  Scenario: [6] fails: wrong order
    Given any graph
    When executing query:
      """
      UNWIND [1, 2] AS x RETURN x
      """
    Then the result should be, in order:
      | x |
      | 2 |
      | 1 |

  Scenario: [7] fails: path direction
    Given an empty graph
    And having executed:
      """
      CREATE (:A)-[:T]->(:B)
      """
    When executing query:
      """
      MATCH p = (:B)<-[:T]-(:A) RETURN p
      """
    Then the result should be, in any order:
      | p |
      | <(:B)-[:T]->(:A)> |

  Scenario: [8] passes: path direction
    Given an empty graph
    And having executed:
      """
      CREATE (:A)-[:T]->(:B)
      """
    When executing query:
      """
      MATCH p = (:B)<-[:T]-(:A) RETURN p
      """
    Then the result should be, in any order:
      | p |
      | <(:B)<-[:T]-(:A)> |

  Scenario: [9] passes: named graph, parameters, table procedure
    Given the selftest-tree graph
    And parameters are:
      | name | 'a' |
    And there exists a procedure test.my.proc(in :: INTEGER?) :: (out :: STRING?):
      | in | out |
      | 1  | 'x' |
    When executing query:
      """
      MATCH (n {name: $name}) CALL test.my.proc(1) YIELD out RETURN n.name, out, count{ (n)-->() } AS c
      """
    Then the result should be, in any order:
      | n.name | out | c |
      | 'a'    | 'x' | 4 |

  Scenario: [10] fails: row count
    Given any graph
    When executing query:
      """
      UNWIND [1, 2] AS x RETURN x
      """
    Then the result should be, in any order:
      | x |
      | 1 |

  Scenario: [11] fails: node labels and properties
    Given an empty graph
    And having executed:
      """
      CREATE (:A:B {k: 'v'})
      """
    When executing query:
      """
      MATCH (n) RETURN n
      """
    Then the result should be, in any order:
      | n                  |
      | (:A {k: 'v'})      |

  Scenario: [12] passes: node labels as a set
    Given an empty graph
    And having executed:
      """
      CREATE (:A:B {k: 'v'})
      """
    When executing query:
      """
      MATCH (n) RETURN n
      """
    Then the result should be, in any order:
      | n                  |
      | (:B:A {k: 'v'})    |

  Scenario: [13] fails: an error was expected
    Given any graph
    When executing query:
      """
      RETURN 1 AS x
      """
    Then a SyntaxError should be raised at compile time: UnexpectedSyntax

  Scenario: [14] fails: lists are ordered
    Given any graph
    When executing query:
      """
      RETURN [1, 2] AS l
      """
    Then the result should be, in any order:
      | l      |
      | [2, 1] |

  Scenario: [15] passes: ignoring element order for lists
    Given any graph
    When executing query:
      """
      RETURN [1, 2] AS l
      """
    Then the result should be (ignoring element order for lists):
      | l      |
      | [2, 1] |

  @ignore
  Scenario: [16] skipped: tagged ignore
    Given any graph
    When executing query:
      """
      RETURN 1 AS x
      """
    Then the result should be empty
